"""Verifying Sigstore bundles: DSSE statements (our records and events) and plain message signatures.

Key-signed bundles are checked against keys the verifier trusts (the bundle's key hint
only says which one to try); keyless bundles are verified offline by sigstore-python
against a pinned trust root, and accepted only when a :class:`TrustPolicy` lists the
certificate's identity.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from pydantic import ValidationError
from sigstore.dsse import Statement
from sigstore.errors import Error as SigstoreError
from sigstore_models.bundle.v1 import Bundle
from sigstore_models.common.v1 import HashAlgorithm

from harness.errors import SignatureError, TransparencyLogError, UntrustedSignerError
from harness.signing.identity import CertificateIdentity
from harness.signing.keys import PublicKey, TrustedKey, key_hint
from harness.signing.policy import TrustPolicy

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""DSSE payload type of an in-toto Statement; anything else is not a statement."""

Trusted = Sequence[TrustedKey] | TrustPolicy
"""Whose signatures a verification accepts: trusted keys, or a whole trust policy."""

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_TRUST_HINT = "pass --trust-key PATH with the signer's public key (a PEM file or a folder of them)"


@dataclass(frozen=True)
class VerifiedStatement:
    """What a verified bundle vouches for; only ever built after the signature checked.

    ``signer`` is ``key:<hint>`` for key-signed bundles and
    ``sigstore:<identity> (issuer <issuer>)`` for keyless ones. ``policy_entry`` is
    the name (or description) of the trust policy entry that accepted the signer, when
    a policy was used; ``signer_details`` holds a keyless signer's certificate fields
    (san, issuer, repository, ref, commit, run_url) for ``--json`` output.
    ``statement_bytes`` are the exact signed payload bytes, so callers can hash or
    store them without re-serialising (which could change bytes).
    """

    subjects: dict[str, str]
    predicate_type: str
    predicate: dict[str, Any]
    signer: str
    statement_bytes: bytes = field(repr=False)
    policy_entry: str | None = None
    signer_details: dict[str, str] = field(default_factory=dict)


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature actually covers.

    Kept here (rather than importing sigstore's private helper) because verification
    must not depend on private API; the tests check it matches sigstore's bytes.
    """
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)


def _check_canonical_base64(data: bytes | str) -> None:
    """Refuse base64 that decodes leniently (stray characters, other padding).

    A lenient decoder skips characters outside the alphabet, so an edited bundle could
    still decode to the signed bytes; every signer we know writes standard, padded
    base64, so anything else is an alteration and is named as one.
    """
    try:
        env = json.loads(data).get("dsseEnvelope") or {}
    except (ValueError, AttributeError):
        return  # _parse_bundle has already said what is wrong with the JSON
    fields = [("dsseEnvelope.payload", env.get("payload"))]
    sigs = env.get("signatures")
    if isinstance(sigs, list):
        fields += [(f"dsseEnvelope.signatures[{i}].sig", sig.get("sig")) for i, sig in enumerate(sigs) if isinstance(sig, dict)]
    for name, value in fields:
        if not isinstance(value, str):
            continue
        try:
            canonical = base64.b64encode(base64.b64decode(value, validate=True)).decode("ascii") == value
        except (binascii.Error, ValueError):
            canonical = False
        if not canonical:
            raise SignatureError(
                f"{name} is not standard base64 (characters outside the alphabet, or other padding)",
                hint="the bundle was altered after signing; restore it from the dossier's copy",
            )


def _parse_bundle(data: bytes | str) -> Bundle:
    try:
        return Bundle.from_json(data)
    except (ValidationError, ValueError, binascii.Error, UnicodeDecodeError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) and exc.errors() else None
        where = (
            f" at {'.'.join(str(p) for p in first['loc'])}: {first['msg']}" if first else f": {exc}"
        )
        raise SignatureError(
            f"not a valid Sigstore bundle{where}",
            hint="pass the .sigstore.json bundle file written when the record was signed",
        ) from exc


def _key_hint_of(bundle: Bundle) -> str | None:
    """The bundle's key hint; raise if the bundle is keyless (certificate-based)."""
    material = bundle.verification_material
    if material.public_key is None:
        raise SignatureError(
            "this bundle is signed keyless (with a Fulcio certificate), not with a key, "
            "so it cannot be checked against trusted keys",
            hint="verify it with a trust policy that lists the signer's OIDC identity "
            "('--trust-policy FILE', see docs/trust-policy.md)",
        )
    return material.public_key.hint or None


def _verify_raw(public_key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Check ``signature`` over ``data`` with the scheme Sigstore pairs with the key."""
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            digest: hashes.HashAlgorithm = {
                "secp256r1": hashes.SHA256(),
                "secp384r1": hashes.SHA384(),
                "secp521r1": hashes.SHA512(),
            }.get(public_key.curve.name, hashes.SHA256())
            public_key.verify(signature, data, ec.ECDSA(digest))
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:  # pragma: no cover - load_public_keys only yields the kinds above
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def _lookup(
    hint: str | None, trusted: Sequence[TrustedKey], what: str, where: str = "the trust store"
) -> list[TrustedKey]:
    """Trusted keys to try: the one whose *recomputed* hint matches, or all if no hint.

    The hint is recomputed from each trusted key rather than read from
    ``TrustedKey.hint`` so a mislabelled entry can never stand in for another key.
    """
    if hint is None:
        if not trusted:
            raise UntrustedSignerError(
                f"this {what} names no signing key and no keys are trusted",
                hint=_TRUST_HINT,
            )
        return list(trusted)
    matches = [t for t in trusted if key_hint(t.public_key) == hint]
    if not matches:
        known = ", ".join(sorted({key_hint(t.public_key) for t in trusted})) or "none"
        raise UntrustedSignerError(
            f"this {what} was signed by key {hint}, which is not in {where} "
            f"(trusted keys: {known})",
            hint=f"if you trust that signer, {_TRUST_HINT}; its hint must be {hint}",
        )
    return matches[:1]


def _bad_signature(hint: str | None, candidates: Sequence[TrustedKey], what: str) -> SignatureError:
    if hint is None:
        return SignatureError(
            f"the {what} signature does not verify with any of the {len(candidates)} "
            "trusted keys: it was altered, or signed by a key you do not trust",
            hint="get an unaltered copy of the bundle, or " + _TRUST_HINT,
        )
    return SignatureError(
        f"the {what} signature does not verify with trusted key {hint} "
        f"(from {candidates[0].source}): the signed content or the signature was "
        "altered after signing",
        hint="get an unaltered copy of the bundle from its source; do not trust its contents",
    )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"duplicate JSON keys {dupes}")
    return dict(pairs)


def _read_statement(payload: bytes) -> tuple[dict[str, str], str, dict[str, Any]]:
    """Validate the signed payload as an in-toto Statement v1 and extract its parts.

    Duplicate JSON keys are refused: two parsers could pick different values, and a
    signed statement must mean one thing.
    """
    hint = "the signer produced a malformed statement; ask them to re-sign the record"
    try:
        Statement(payload)
        doc = json.loads(payload, object_pairs_hook=_no_duplicate_keys)
    except SigstoreError as exc:
        raise SignatureError(
            f"the signed payload is not an in-toto Statement v1: {exc}", hint=hint
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureError(f"the signed payload is not valid JSON: {exc}", hint=hint) from exc

    subjects: dict[str, str] = {}
    for subject in doc["subject"]:
        name = subject.get("name")
        digest = subject.get("digest", {}).get("sha256")
        if not isinstance(name, str) or not name:
            raise SignatureError("a statement subject has no name", hint=hint)
        if not isinstance(digest, str) or not _SHA256_HEX.match(digest.lower()):
            raise SignatureError(f"statement subject {name!r} has no sha256 digest", hint=hint)
        if name in subjects:
            raise SignatureError(f"statement subject {name!r} appears twice", hint=hint)
        subjects[name] = digest.lower()
    predicate = doc.get("predicate")
    if predicate is None:
        predicate = {}
    return subjects, doc["predicateType"], predicate


def _as_policy(trusted: Sequence[TrustedKey] | TrustPolicy) -> TrustPolicy | None:
    return trusted if isinstance(trusted, TrustPolicy) else None


def _check_envelope_shape(payload_type: str, signatures: int) -> None:
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise SignatureError(
            f"the DSSE payload type is {payload_type!r}, expected "
            f"{INTOTO_PAYLOAD_TYPE!r}: the envelope does not hold an in-toto statement",
            hint="pass a bundle made by 'harness' or another in-toto attestation signer",
        )
    if signatures != 1:
        raise SignatureError(
            f"the DSSE envelope has {signatures} signatures; exactly one is expected",
            hint="re-sign the record so the envelope carries a single signature",
        )


_UNALTERED = "get an unaltered copy of the bundle from its source; do not trust its contents"

# sigstore-python's verification failures, by message prefix, as errors a user can act
# on. Anything not listed is reported with sigstore's own words.
_KEYLESS_FAILURES: tuple[tuple[str, type[SignatureError], str, str], ...] = (
    (
        "DSSE: invalid signature",
        SignatureError,
        "the DSSE signature does not verify with the key in the bundle's Fulcio "
        "certificate: the statement, its payload type or the signature was altered",
        _UNALTERED,
    ),
    (
        "Signature is invalid for input",
        SignatureError,
        "the message signature does not verify with the key in the bundle's Fulcio "
        "certificate: the file or the signature was altered after signing",
        "pass the exact file that was signed; " + _UNALTERED,
    ),
    (
        "Bundle message digest mismatch",
        SignatureError,
        "the bundle signs a different file: its message digest does not match the artifact",
        "pass the exact file that was signed, unmodified",
    ),
    (
        "log entry payload hash does not match bundle",
        TransparencyLogError,
        "the transparency log (Rekor) entry records a different statement than the "
        "bundle's DSSE envelope: the envelope was changed after it was logged",
        _UNALTERED,
    ),
    (
        "log entry signatures do not match bundle",
        TransparencyLogError,
        "the transparency log (Rekor) entry records a different signature than the "
        "bundle's DSSE envelope: the signature was replaced after the entry was logged",
        _UNALTERED,
    ),
    (
        "transparency log entry is inconsistent with other materials",
        TransparencyLogError,
        "the transparency log (Rekor) entry does not match the bundle's signed content "
        "and certificate: the bundle was changed after it was logged",
        _UNALTERED,
    ),
    (
        "invalid log entry",
        TransparencyLogError,
        "the transparency log (Rekor) entry's inclusion proof or signed timestamp does "
        "not verify against the log keys in the trust root",
        _UNALTERED,
    ),
    (
        "failed to build timestamp certificate chain",
        SignatureError,
        "the signing certificate does not chain to a Fulcio CA of the trust root at "
        "the time of signing",
        "if the bundle is genuine and newer than the pinned trust root, refresh the root "
        "('Refreshing the trust root' in docs/trust-policy.md); otherwise do not trust it",
    ),
    (
        "failed to verify SCT",
        SignatureError,
        "the signing certificate's certificate-transparency proof (SCT) does not verify "
        "against the CT log keys of the trust root",
        _UNALTERED,
    ),
    (
        "not enough sources of verified time",
        SignatureError,
        "the bundle proves no signing time: it has no transparency log entry with a "
        "signed promise and no trusted timestamp",
        "keyless bundles need their Rekor entry; " + _UNALTERED,
    ),
)


def _keyless_failure(exc: Exception, policy: TrustPolicy) -> SignatureError:
    text = str(exc)
    if text.startswith("certificate identity rejected by the trust policy"):
        return UntrustedSignerError(
            text.replace("the trust policy", policy.where, 1),
            hint="add an [[identities]] entry for the signer to the trust policy "
            "(docs/trust-policy.md) if you trust it",
        )
    for prefix, cls, message, hint in _KEYLESS_FAILURES:
        if text.startswith(prefix):
            return cls(f"{message} (sigstore: {text})", hint=hint)
    return SignatureError(
        f"the keyless bundle does not verify against the Sigstore trust root "
        f"{policy.trusted_root}: {text}",
        hint=_UNALTERED,
    )


def _load_keyless(data: bytes | str, policy: TrustPolicy) -> tuple[Any, Any, Any]:
    """Parse a keyless bundle with sigstore and pick the policy rule for its identity."""
    from sigstore.errors import Error as SigstoreBaseError
    from sigstore.models import Bundle as SigstoreBundle

    try:
        parsed = SigstoreBundle.from_json(data)
        cert = parsed.signing_certificate
    except (SigstoreBaseError, ValidationError, ValueError, binascii.Error) as exc:
        raise SignatureError(
            f"not a valid Sigstore bundle: {exc}",
            hint="pass the .sigstore.json bundle file written when the record was signed",
        ) from exc
    ident = CertificateIdentity.from_certificate(cert)
    rule = policy.match_identity(ident)
    return parsed, ident, rule


def _verify_keyless(
    data: bytes | str, policy: TrustPolicy, *, verifier: Any | None = None
) -> VerifiedStatement:
    """Verify a keyless DSSE bundle offline with sigstore-python against ``policy``.

    sigstore-python's ``Verifier`` does the cryptography (certificate chain to the
    trust root at the signing time, SCT, Rekor inclusion proof and signed entry
    timestamp, DSSE signature, log entry consistency); the matching policy rule is
    passed to it as its identity policy, so the identity is checked on the proven
    certificate. The rule is also looked up beforehand, so a signer the policy does
    not list is reported as such, naming who it was.
    """
    from sigstore.errors import Error as SigstoreBaseError

    parsed, ident, rule = _load_keyless(data, policy)
    verifier = verifier if verifier is not None else policy.verifier()
    try:
        payload_type, payload = verifier.verify_dsse(parsed, rule)
    except SigstoreBaseError as exc:
        raise _keyless_failure(exc, policy) from exc
    envelope = Bundle.from_json(data).dsse_envelope
    _check_envelope_shape(payload_type, len(envelope.signatures) if envelope else 0)
    subjects, predicate_type, predicate = _read_statement(payload)
    return VerifiedStatement(
        subjects=subjects,
        predicate_type=predicate_type,
        predicate=predicate,
        signer=f"sigstore:{ident.describe()}",
        statement_bytes=payload,
        policy_entry=rule.label,
        signer_details=ident.details(),
    )


def verify_bundle(
    bundle: bytes | str, trusted: Sequence[TrustedKey] | TrustPolicy
) -> VerifiedStatement:
    """Verify a DSSE bundle and return its statement, if ``trusted`` accepts the signer.

    ``trusted`` is either a list of trusted keys or a :class:`harness.signing.policy.TrustPolicy`.

    * Key-signed bundles: the bundle's key hint is only used to *find* a trusted key;
      the signature over the DSSE PAE is then checked with that key. Transparency-log
      entries, if any, are not checked. ``signer`` is ``key:<hint>``.
    * Keyless (Fulcio certificate) bundles: only through a policy listing a matching
      identity; verified fully offline by sigstore-python against the policy's trust
      root. ``signer`` is ``sigstore:<identity> (issuer <issuer>)``.

    Raises :class:`UntrustedSignerError` when the signer is not trusted,
    :class:`TransparencyLogError` when a keyless bundle's log entry is wrong, and
    :class:`SignatureError` for everything else that is wrong.
    """
    parsed = _parse_bundle(bundle)
    envelope = parsed.dsse_envelope
    if envelope is not None:
        _check_canonical_base64(bundle)
    if envelope is None:
        raise SignatureError(
            "this bundle holds a plain message signature, not a DSSE envelope, so it "
            "does not carry a signed statement",
            hint="check you passed the run record's bundle (<record>.sigstore.json); "
            "message-signature bundles are checked against the signed file instead",
        )
    policy = _as_policy(trusted)
    if parsed.verification_material.public_key is None and policy is not None:
        return _verify_keyless(bundle, policy)
    hint = _key_hint_of(parsed)
    _check_envelope_shape(envelope.payload_type, len(envelope.signatures))
    signature = envelope.signatures[0].sig
    pae = _pae(envelope.payload_type, envelope.payload)

    keys = policy.trusted_keys if policy is not None else trusted
    where = policy.where if policy is not None else "the trust store"
    candidates = _lookup(hint, keys, "bundle", where)  # type: ignore[arg-type]
    signer = next((t for t in candidates if _verify_raw(t.public_key, signature, pae)), None)
    if signer is None:
        raise _bad_signature(hint, candidates, "DSSE")

    subjects, predicate_type, predicate = _read_statement(envelope.payload)
    signer_hint = key_hint(signer.public_key)
    return VerifiedStatement(
        subjects=subjects,
        predicate_type=predicate_type,
        predicate=predicate,
        signer=f"key:{signer_hint}",
        statement_bytes=envelope.payload,
        policy_entry=(policy.key_name(signer_hint) if policy is not None else None),
    )


_DIGESTS = {
    HashAlgorithm.SHA2_256: hashlib.sha256,
    HashAlgorithm.SHA2_384: hashlib.sha384,
    HashAlgorithm.SHA2_512: hashlib.sha512,
    HashAlgorithm.SHA3_256: hashlib.sha3_256,
    HashAlgorithm.SHA3_384: hashlib.sha3_384,
}


def verify_message_bundle(
    bundle: bytes | str, artifact: bytes, trusted: Sequence[TrustedKey] | TrustPolicy
) -> str:
    """Verify a ``messageSignature`` bundle over ``artifact``; return the signer.

    Other Sigstore clients (cosign, sigstore-go, sigstore-js, sigstore-python) sign a
    file directly instead of a statement; auditors may hand us such bundles. For a
    key-signed bundle the recorded message digest must match ``artifact`` and the
    signature over the artifact must verify with the trusted key the hint names
    (transparency-log entries and timestamps are not checked). A keyless bundle needs
    a :class:`harness.signing.policy.TrustPolicy` listing its identity and is verified offline
    by sigstore-python against the policy's trust root.
    """
    parsed = _parse_bundle(bundle)
    message = parsed.message_signature
    if message is None:
        raise SignatureError(
            "this bundle holds a DSSE envelope, not a message signature",
            hint="verify it as a statement bundle (verify_bundle / 'harness verify')",
        )
    policy = _as_policy(trusted)
    if parsed.verification_material.public_key is None and policy is not None:
        from sigstore.errors import Error as SigstoreBaseError

        sig_bundle, ident, rule = _load_keyless(bundle, policy)
        try:
            policy.verifier().verify_artifact(artifact, sig_bundle, rule)
        except SigstoreBaseError as exc:
            raise _keyless_failure(exc, policy) from exc
        return f"sigstore:{ident.describe()}"
    hint = _key_hint_of(parsed)
    if message.message_digest is not None:
        algorithm = message.message_digest.algorithm
        hasher = _DIGESTS.get(algorithm)
        if hasher is None:
            raise SignatureError(
                f"the bundle's message digest uses {algorithm.value}, which is not supported",
                hint="re-sign with SHA2_256",
            )
        if hasher(artifact).digest() != message.message_digest.digest:
            raise SignatureError(
                "the bundle signs a different file: its message digest does not match "
                f"the artifact ({algorithm.value} {hasher(artifact).hexdigest()})",
                hint="pass the exact file that was signed, unmodified",
            )
    keys = policy.trusted_keys if policy is not None else trusted
    where = policy.where if policy is not None else "the trust store"
    candidates = _lookup(hint, keys, "bundle", where)  # type: ignore[arg-type]
    signer = next(
        (t for t in candidates if _verify_raw(t.public_key, message.signature, artifact)), None
    )
    if signer is None:
        raise _bad_signature(hint, candidates, "message")
    return f"key:{key_hint(signer.public_key)}"
