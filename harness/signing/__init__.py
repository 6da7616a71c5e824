"""Signing and verifying: in-toto statements in DSSE envelopes inside Sigstore bundles.

Modules, bottom up: :mod:`.keys` (the local key, trusted public keys), :mod:`.identity`
(who a Fulcio certificate names, and identity rules as sigstore policies), :mod:`.policy`
(trust policies and the pinned trust root), :mod:`.verify` (verifying bundles, and the
files they sign), :mod:`.sign` (making them, with a local key or keyless with Sigstore).
Every use of sigstore-python beyond its public API is in :mod:`._sigstore_compat`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.signing.identity import GITHUB_ACTIONS_ISSUER, CertificateIdentity, IdentityRule
    from harness.signing.keys import (
        SigningKey,
        TrustedKey,
        default_config_dir,
        default_trust_store,
        key_hint,
        load_or_create_key,
        load_public_keys,
    )
    from harness.signing.policy import (
        PINNED_TRUSTED_ROOT,
        PINNED_TRUSTED_ROOT_SHA256,
        POLICY_ENV,
        POLICY_FILENAME,
        TrustPolicy,
        load_trust_policy,
        load_trusted_root,
        resolve_trust,
    )
    from harness.signing.sign import (
        BUNDLE_MEDIA_TYPE,
        sign_statement,
        sign_statement_keyless,
    )
    from harness.signing.verify import (
        AttestationWords,
        Trusted,
        VerifiedStatement,
        verify_attestation,
        verify_bundle,
        verify_message_bundle,
    )

__all__ = [
    "AttestationWords",
    "BUNDLE_MEDIA_TYPE",
    "CertificateIdentity",
    "GITHUB_ACTIONS_ISSUER",
    "IdentityRule",
    "PINNED_TRUSTED_ROOT",
    "PINNED_TRUSTED_ROOT_SHA256",
    "POLICY_ENV",
    "POLICY_FILENAME",
    "SigningKey",
    "TrustPolicy",
    "Trusted",
    "TrustedKey",
    "VerifiedStatement",
    "default_config_dir",
    "default_trust_store",
    "key_hint",
    "load_or_create_key",
    "load_public_keys",
    "load_trust_policy",
    "load_trusted_root",
    "resolve_trust",
    "sign_statement",
    "sign_statement_keyless",
    "verify_attestation",
    "verify_bundle",
    "verify_message_bundle",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "AttestationWords": "harness.signing.verify",
    "BUNDLE_MEDIA_TYPE": "harness.signing.sign",
    "CertificateIdentity": "harness.signing.identity",
    "GITHUB_ACTIONS_ISSUER": "harness.signing.identity",
    "IdentityRule": "harness.signing.identity",
    "PINNED_TRUSTED_ROOT": "harness.signing.policy",
    "PINNED_TRUSTED_ROOT_SHA256": "harness.signing.policy",
    "POLICY_ENV": "harness.signing.policy",
    "POLICY_FILENAME": "harness.signing.policy",
    "SigningKey": "harness.signing.keys",
    "TrustPolicy": "harness.signing.policy",
    "Trusted": "harness.signing.verify",
    "TrustedKey": "harness.signing.keys",
    "VerifiedStatement": "harness.signing.verify",
    "default_config_dir": "harness.signing.keys",
    "default_trust_store": "harness.signing.keys",
    "key_hint": "harness.signing.keys",
    "load_or_create_key": "harness.signing.keys",
    "load_public_keys": "harness.signing.keys",
    "load_trust_policy": "harness.signing.policy",
    "load_trusted_root": "harness.signing.policy",
    "resolve_trust": "harness.signing.policy",
    "sign_statement": "harness.signing.sign",
    "sign_statement_keyless": "harness.signing.sign",
    "verify_attestation": "harness.signing.verify",
    "verify_bundle": "harness.signing.verify",
    "verify_message_bundle": "harness.signing.verify",
})
