"""Everything the harness takes from sigstore-python beyond its documented public API.

sigstore-python may change anything private (underscored modules and names) or the
wording of its error messages in any release. Keeping every such dependency here, and
only here, means an upgrade has one file to review, and ``tests/test_sigstore_compat.py``
fails the moment one of these assumptions stops holding (a name moved, a call shape
changed, a message was reworded, a tampered bundle is refused for another reason).

What is here, and why there is no public alternative:

* :func:`sign_dsse_with_key`: sigstore-python signs DSSE envelopes only with the
  ephemeral key of a keyless ``Signer``; signing with a long-lived local key exists
  only as the private ``sigstore.dsse._sign``.
* :func:`expired_errors` / :func:`service_errors`: the exceptions sigstore's ``Signer``
  raises for an expired certificate and for Fulcio / Rekor HTTP failures are defined
  in ``sigstore._internal`` and are not re-exported publicly.
* :data:`KEYLESS_FAILURES`: sigstore's ``Verifier`` reports every failure as one
  ``VerificationError`` class; which check failed is only in the message text, so
  telling a replaced signature from a forged log entry means reading that text.
* :func:`bundled_trusted_root`: the trust roots sigstore-python ships inside its
  wheel (``sigstore/_store``), which the pinned root is refreshed from
  (docs/trust-policy.md) and compared with in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import sigstore

from harness.errors import SignatureFailure

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec
    from sigstore.dsse import Envelope, Statement

# sigstore's DSSE, bundle and policy modules cost a few hundred ms to import; they are
# imported where used, so a command pays for them only when it signs or verifies.

_UNALTERED = "get an unaltered copy of the bundle from its source; do not trust its contents"


def sign_dsse_with_key(key: ec.EllipticCurvePrivateKey, statement: Statement) -> Envelope:
    """Sign ``statement`` with ``key`` (ECDSA P-256, SHA-256) into a DSSE envelope.

    The signature covers the DSSE pre-authentication encoding of the statement's exact
    bytes, as sigstore-python's keyless signer does.
    """
    from sigstore.dsse import _sign

    return _sign(key, statement)


def expired_errors() -> tuple[type[Exception], ...]:
    """What sigstore's ``Signer`` raises when the token or its certificate expired."""
    from sigstore._internal.fulcio.client import ExpiredCertificate
    from sigstore.oidc import ExpiredIdentity

    return (ExpiredIdentity, ExpiredCertificate)


def service_errors() -> tuple[type[Exception], ...]:
    """What sigstore's Fulcio and Rekor clients raise for a refused or failed request.

    Neither derives from ``sigstore.errors.Error``, so they must be caught by name.
    """
    from sigstore._internal.fulcio.client import FulcioClientError
    from sigstore._internal.rekor import RekorClientError

    return (FulcioClientError, RekorClientError)


def bundled_trusted_root(instance: Literal["production", "staging"]) -> Path:
    """The trust root file sigstore-python ships for ``instance`` (it may not exist)."""
    host = "tuf-repo-cdn.sigstore.dev" if instance == "production" else "tuf-repo-cdn.sigstage.dev"
    return Path(sigstore.__file__).parent / "_store" / f"https%3A%2F%2F{host}" / "trusted_root.json"


@dataclass(frozen=True)
class KeylessFailure:
    """One kind of sigstore verification failure, and how the harness reports it.

    ``prefix`` is how sigstore-python's message starts (its exact wording, checked
    against its source by the tests); ``message`` and ``hint`` are ours.
    """

    prefix: str
    reason: SignatureFailure
    message: str
    hint: str


KEYLESS_FAILURES: tuple[KeylessFailure, ...] = (
    KeylessFailure(
        "DSSE: invalid signature",
        SignatureFailure.BAD_SIGNATURE,
        "the DSSE signature does not verify with the key in the bundle's Fulcio "
        "certificate: the statement, its payload type or the signature was altered",
        _UNALTERED,
    ),
    KeylessFailure(
        "Signature is invalid for input",
        SignatureFailure.BAD_SIGNATURE,
        "the message signature does not verify with the key in the bundle's Fulcio "
        "certificate: the file or the signature was altered after signing",
        "pass the exact file that was signed; " + _UNALTERED,
    ),
    KeylessFailure(
        "Bundle message digest mismatch",
        SignatureFailure.MESSAGE_DIGEST_MISMATCH,
        "the bundle signs a different file: its message digest does not match the artifact",
        "pass the exact file that was signed, unmodified",
    ),
    KeylessFailure(
        "log entry payload hash does not match bundle",
        SignatureFailure.TLOG_MISMATCH,
        "the transparency log (Rekor) entry records a different statement than the "
        "bundle's DSSE envelope: the envelope was changed after it was logged",
        _UNALTERED,
    ),
    KeylessFailure(
        "log entry signatures do not match bundle",
        SignatureFailure.TLOG_MISMATCH,
        "the transparency log (Rekor) entry records a different signature than the "
        "bundle's DSSE envelope: the signature was replaced after the entry was logged",
        _UNALTERED,
    ),
    KeylessFailure(
        "transparency log entry is inconsistent with other materials",
        SignatureFailure.TLOG_MISMATCH,
        "the transparency log (Rekor) entry does not match the bundle's signed content "
        "and certificate: the bundle was changed after it was logged",
        _UNALTERED,
    ),
    KeylessFailure(
        "invalid log entry",
        SignatureFailure.TLOG_INVALID,
        "the transparency log (Rekor) entry's inclusion proof or signed timestamp does "
        "not verify against the log keys in the trust root",
        _UNALTERED,
    ),
    KeylessFailure(
        "failed to build timestamp certificate chain",
        SignatureFailure.CERT_CHAIN,
        "the signing certificate does not chain to a Fulcio CA of the trust root at "
        "the time of signing",
        "if the bundle is genuine and newer than the pinned trust root, refresh the root "
        "('Refreshing the trust root' in docs/trust-policy.md); otherwise do not trust it",
    ),
    KeylessFailure(
        "failed to verify SCT",
        SignatureFailure.SCT_INVALID,
        "the signing certificate's certificate-transparency proof (SCT) does not verify "
        "against the CT log keys of the trust root",
        _UNALTERED,
    ),
    KeylessFailure(
        "not enough sources of verified time",
        SignatureFailure.NO_VERIFIED_TIME,
        "the bundle proves no signing time: it has no transparency log entry with a "
        "signed promise and no trusted timestamp",
        "keyless bundles need their Rekor entry; " + _UNALTERED,
    ),
)
"""sigstore-python's verification failures that a user can act on, by message prefix."""


def classify_verification_error(exc: Exception) -> KeylessFailure | None:
    """The :class:`KeylessFailure` a sigstore verification error stands for, if known."""
    text = str(exc)
    return next((f for f in KEYLESS_FAILURES if text.startswith(f.prefix)), None)
