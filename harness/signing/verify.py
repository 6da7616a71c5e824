"""Verifying Sigstore bundles: DSSE statements (our records and events) and plain message signatures.

Key-signed bundles are checked against keys the verifier trusts (the bundle's key hint
only says which one to try); keyless bundles are verified offline by sigstore-python
against a pinned trust root, and accepted only when a :class:`TrustPolicy` lists the
certificate's identity.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from pydantic import ValidationError
from sigstore.errors import Error as SigstoreError

from harness._internal.hashing import sha256_file
from harness._internal.strictjson import check_strict, loads_strict
from harness.errors import (
    RecordError,
    SignatureError,
    SignatureFailure,
    TransparencyLogError,
    UntrustedSignerError,
)
from harness.signing._sigstore_compat import classify_verification_error
from harness.signing.identity import CertificateIdentity, IdentityRejectedError
from harness.signing.keys import PublicKey, TrustedKey, key_hint
from harness.signing.policy import TrustPolicy

if TYPE_CHECKING:
    from sigstore_models.bundle.v1 import Bundle

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
                reason=SignatureFailure.NON_CANONICAL_BASE64,
            )


def _parse_bundle(data: bytes | str) -> Bundle:
    from sigstore_models.bundle.v1 import Bundle

    try:
        check_strict(data)  # duplicate keys: another client could verify other bytes than we do
        return Bundle.from_json(data)
    except (ValidationError, ValueError, binascii.Error, UnicodeDecodeError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) and exc.errors() else None
        where = (
            f" at {'.'.join(str(p) for p in first['loc'])}: {first['msg']}" if first else f": {exc}"
        )
        raise SignatureError(
            f"not a valid Sigstore bundle{where}",
            hint="pass the .sigstore.json bundle file written when the record was signed",
            reason=SignatureFailure.MALFORMED_BUNDLE,
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
            reason=SignatureFailure.KEYLESS_NEEDS_POLICY,
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
                reason=SignatureFailure.UNTRUSTED_SIGNER,
            )
        return list(trusted)
    matches = [t for t in trusted if key_hint(t.public_key) == hint]
    if not matches:
        known = ", ".join(sorted({key_hint(t.public_key) for t in trusted})) or "none"
        raise UntrustedSignerError(
            f"this {what} was signed by key {hint}, which is not in {where} "
            f"(trusted keys: {known})",
            hint=f"if you trust that signer, {_TRUST_HINT}; its hint must be {hint}",
            reason=SignatureFailure.UNTRUSTED_SIGNER,
        )
    return matches[:1]


def _bad_signature(hint: str | None, candidates: Sequence[TrustedKey], what: str) -> SignatureError:
    if hint is None:
        return SignatureError(
            f"the {what} signature does not verify with any of the {len(candidates)} "
            "trusted keys: it was altered, or signed by a key you do not trust",
            hint="get an unaltered copy of the bundle, or " + _TRUST_HINT,
            reason=SignatureFailure.BAD_SIGNATURE,
        )
    return SignatureError(
        f"the {what} signature does not verify with trusted key {hint} "
        f"(from {candidates[0].source}): the signed content or the signature was "
        "altered after signing",
        hint="get an unaltered copy of the bundle from its source; do not trust its contents",
        reason=SignatureFailure.BAD_SIGNATURE,
    )


def _read_statement(payload: bytes) -> tuple[dict[str, str], str, dict[str, Any]]:
    """Validate the signed payload as an in-toto Statement v1 and extract its parts.

    Duplicate JSON keys are refused: two parsers could pick different values, and a
    signed statement must mean one thing.
    """
    hint = "the signer produced a malformed statement; ask them to re-sign the record"
    bad = SignatureFailure.NOT_A_STATEMENT
    from sigstore.dsse import Statement

    try:
        Statement(payload)
        doc = loads_strict(payload)
    except SigstoreError as exc:
        raise SignatureError(
            f"the signed payload is not an in-toto Statement v1: {exc}", hint=hint, reason=bad
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureError(
            f"the signed payload is not valid JSON: {exc}", hint=hint, reason=bad
        ) from exc

    subjects: dict[str, str] = {}
    for subject in doc["subject"]:
        name = subject.get("name")
        digest = subject.get("digest", {}).get("sha256")
        if not isinstance(name, str) or not name:
            raise SignatureError("a statement subject has no name", hint=hint, reason=bad)
        if not isinstance(digest, str) or not _SHA256_HEX.match(digest.lower()):
            raise SignatureError(
                f"statement subject {name!r} has no sha256 digest", hint=hint, reason=bad
            )
        if name in subjects:
            raise SignatureError(
                f"statement subject {name!r} appears twice", hint=hint, reason=bad
            )
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
            reason=SignatureFailure.WRONG_PAYLOAD_TYPE,
        )
    if signatures != 1:
        raise SignatureError(
            f"the DSSE envelope has {signatures} signatures; exactly one is expected",
            hint="re-sign the record so the envelope carries a single signature",
            reason=SignatureFailure.SIGNATURE_COUNT,
        )


_UNALTERED = "get an unaltered copy of the bundle from its source; do not trust its contents"
_TLOG_FAILURES = frozenset({SignatureFailure.TLOG_MISMATCH, SignatureFailure.TLOG_INVALID})


def _keyless_failure(exc: Exception, policy: TrustPolicy) -> SignatureError:
    """sigstore's verification error as one of ours, with a reason and a hint.

    An identity rule's refusal is recognised by its class; sigstore's own failures by
    their wording (:mod:`._sigstore_compat`); anything else keeps sigstore's words.
    """
    if isinstance(exc, IdentityRejectedError):
        return UntrustedSignerError(
            f"certificate identity rejected by {policy.where}: {exc.why}",
            hint="add an [[identities]] entry for the signer to the trust policy "
            "(docs/trust-policy.md) if you trust it",
            reason=SignatureFailure.UNTRUSTED_SIGNER,
        )
    text = str(exc)
    known = classify_verification_error(exc)
    if known is not None:
        cls = TransparencyLogError if known.reason in _TLOG_FAILURES else SignatureError
        return cls(f"{known.message} (sigstore: {text})", hint=known.hint, reason=known.reason)
    return SignatureError(
        f"the keyless bundle does not verify against the Sigstore trust root "
        f"{policy.trusted_root}: {text}",
        hint=_UNALTERED,
        reason=SignatureFailure.KEYLESS_REJECTED,
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
            reason=SignatureFailure.MALFORMED_BUNDLE,
        ) from exc
    rule = policy.match_identity(cert)
    return parsed, CertificateIdentity.from_certificate(cert), rule


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
    from sigstore_models.bundle.v1 import Bundle

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
            reason=SignatureFailure.WRONG_BUNDLE_KIND,
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
    "SHA2_256": hashlib.sha256,
    "SHA2_384": hashlib.sha384,
    "SHA2_512": hashlib.sha512,
    "SHA3_256": hashlib.sha3_256,
    "SHA3_384": hashlib.sha3_384,
}
"""Message digest algorithms of a bundle, by the name of sigstore_models' HashAlgorithm."""


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
            reason=SignatureFailure.WRONG_BUNDLE_KIND,
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
        hasher = _DIGESTS.get(algorithm.name)
        if hasher is None:
            raise SignatureError(
                f"the bundle's message digest uses {algorithm.value}, which is not supported",
                hint="re-sign with SHA2_256",
                reason=SignatureFailure.UNSUPPORTED_DIGEST,
            )
        if hasher(artifact).digest() != message.message_digest.digest:
            raise SignatureError(
                "the bundle signs a different file: its message digest does not match "
                f"the artifact ({algorithm.value} {hasher(artifact).hexdigest()})",
                hint="pass the exact file that was signed, unmodified",
                reason=SignatureFailure.MESSAGE_DIGEST_MISMATCH,
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


@dataclass(frozen=True)
class AttestationWords:
    """How :func:`verify_attestation` names what it checks, so each caller keeps its words.

    ``wrong_predicate`` follows ``predicate type '<type>'`` in the message when the
    bundle signs another kind of document. ``labels`` name files in messages (keyed by
    subject name, plus ``bundle_label`` for the bundle): ``<label> <path> is missing``
    and ``the <label> was altered after signing``; unlabelled files read ``<path> is
    missing`` and ``<subject name> was altered after signing``.
    """

    wrong_predicate: str
    wrong_predicate_hint: str = "the bundle signs something else"
    labels: Mapping[str, str] = field(default_factory=dict)
    bundle_label: str | None = None
    restore_hint: str = "restore it from a copy of the dossier"


def _located(err: SignatureError, where: Path) -> SignatureError:
    """``err`` again (same class, hint and reason), its message prefixed with ``where``."""
    located = copy.copy(err)
    located.message = f"{where}: {err.message}"
    located.args = (located.message,)
    return located


def verify_attestation(
    bundle: Path,
    trusted: Trusted,
    predicate_type: str,
    subjects: Mapping[str, Path],
    *,
    words: AttestationWords | None = None,
) -> VerifiedStatement:
    """Verify ``bundle``, then the digests of the files it signs: the one skeleton for
    every signed document (run records, dossier events).

    In order, each failure raised as soon as it is found:

    1. every file is present (the first subject, the bundle, then the other subjects,
       the order a reader looks for them): :class:`RecordError`;
    2. the bundle verifies and ``trusted`` accepts its signer (:func:`verify_bundle`):
       its :class:`SignatureError`, the message prefixed with the bundle's path;
    3. the statement's predicate type is ``predicate_type``: :class:`SignatureError`
       with reason :attr:`SignatureFailure.WRONG_PREDICATE`;
    4. each file's sha256 equals the digest signed for its subject name:
       :class:`RecordError` naming the file (the signature is fine; the file changed).

    Files the statement signs but ``subjects`` does not name are not checked here.
    """
    words = words or AttestationWords(wrong_predicate=f"is not {predicate_type!r}")
    ordered = list(subjects.items())
    present = [(words.labels.get(name), path) for name, path in ordered[:1]]
    present.append((words.bundle_label, bundle))
    present += [(words.labels.get(name), path) for name, path in ordered[1:]]
    for label, path in present:
        if not path.is_file():
            what = f"{label} {path}" if label else f"{path}"
            raise RecordError(f"{what} is missing", hint=words.restore_hint)
    try:
        statement = verify_bundle(bundle.read_bytes(), trusted)
    except SignatureError as exc:
        raise _located(exc, bundle) from None
    if statement.predicate_type != predicate_type:
        raise SignatureError(
            f"{bundle}: predicate type {statement.predicate_type!r} {words.wrong_predicate}",
            hint=words.wrong_predicate_hint,
            reason=SignatureFailure.WRONG_PREDICATE,
        )
    for name, path in ordered:
        digest = sha256_file(path)
        signed = statement.subjects.get(name)
        if signed != digest:
            label = words.labels.get(name)
            raise RecordError(
                f"{path}: sha256 {digest} does not match the signed digest {signed}",
                hint=f"the {label} was altered after signing" if label else f"{name} was altered after signing",
            )
    return statement
