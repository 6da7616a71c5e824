"""Signing and verifying: in-toto statements in DSSE envelopes inside Sigstore bundles.

Modules, bottom up: :mod:`.keys` (the local key, trusted public keys), :mod:`.identity`
(who a Fulcio certificate names, and identity rules), :mod:`.policy` (trust policies and
the pinned trust root), :mod:`.verify` (verifying bundles), :mod:`.sign` (making them,
with a local key or keyless with Sigstore).
"""

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
    PREDICATE_TYPE_RUN,
    sign_statement,
    sign_statement_keyless,
)
from harness.signing.verify import Trusted, VerifiedStatement, verify_bundle, verify_message_bundle

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "GITHUB_ACTIONS_ISSUER",
    "PINNED_TRUSTED_ROOT",
    "PINNED_TRUSTED_ROOT_SHA256",
    "POLICY_ENV",
    "POLICY_FILENAME",
    "PREDICATE_TYPE_RUN",
    "CertificateIdentity",
    "IdentityRule",
    "SigningKey",
    "Trusted",
    "TrustPolicy",
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
    "verify_bundle",
    "verify_message_bundle",
]
