"""harness.signing._sigstore_compat: every assumption about sigstore-python's internals.

These tests exist to fail when sigstore-python changes underneath the harness: a
private name moves or changes its call shape, a verification message is reworded (so
a failure would silently lose its reason), or a real tampered bundle is refused for
another reason than before. When one fails after an upgrade, adapt
``harness/signing/_sigstore_compat.py`` (and only it).

Real bundles come from ``../shared/fixtures/sigstore`` (see its SOURCE.md), read in
place; tampered variants are made here from those bytes.
"""

from __future__ import annotations

import base64
import copy
import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
import sigstore
import sigstore.dsse
import sigstore.sign
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sigstore.errors import VerificationError

from harness import signing
from harness.errors import SignatureError, SignatureFailure, TransparencyLogError
from harness.signing import _sigstore_compat as compat

from .conftest import BEACON_REPO, GITHUB_ISSUER, SIGSTORE_FIXTURES, needs_sigstore_fixtures

FIXTURES = SIGSTORE_FIXTURES
needs_fixtures = needs_sigstore_fixtures

GITHUB = GITHUB_ISSUER
SIGSTORE_SOURCE = Path(sigstore.__file__).parent


def _sigstore_text() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted(SIGSTORE_SOURCE.rglob("*.py"))}


# ------------------------------------------------------------- private names


def test_dsse_sign_keeps_its_call_shape_and_signs_the_pae():
    """``sigstore.dsse._sign(key, stmt) -> Envelope``, ECDSA-SHA256 over the DSSE PAE."""
    params = list(inspect.signature(sigstore.dsse._sign).parameters)
    assert params == ["key", "stmt"]
    statement = (
        sigstore.dsse.StatementBuilder()
        .subjects(
            [
                sigstore.dsse.Subject(
                    name="a", digest=sigstore.dsse.DigestSet({"sha256": "0" * 64})
                )
            ]
        )
        .predicate_type("https://example.com/p")
        .predicate({"x": 1})
        .build()
    )
    key = ec.generate_private_key(ec.SECP256R1())
    envelope = compat.sign_dsse_with_key(key, statement)
    assert isinstance(envelope, sigstore.dsse.Envelope)
    doc = json.loads(envelope.to_json())
    payload = base64.b64decode(doc["payload"])
    assert json.loads(payload)["predicate"] == {"x": 1}
    assert doc["payloadType"] == "application/vnd.in-toto+json"
    (sig,) = doc["signatures"]
    ptype = b"application/vnd.in-toto+json"
    pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
    key.public_key().verify(base64.b64decode(sig["sig"]), pae, ec.ECDSA(hashes.SHA256()))


def test_dsse_pae_used_by_the_tests_is_still_there():
    """tests/test_sign.py forges signatures with ``sigstore.dsse._pae`` (independently of us)."""
    assert list(inspect.signature(sigstore.dsse._pae).parameters) == ["type_", "body"]
    assert sigstore.dsse._pae("t", b"xy") == b"DSSEv1 1 t 2 xy"


def test_private_attributes_read_by_the_signing_tests():
    """tests/test_sign.py's stand-in for Sigstore's services reads what sigstore's Signer
    was handed: a statement's bytes and a token's raw text (no public accessor for either)."""
    import time

    import jwt
    from sigstore.oidc import IdentityToken

    payload = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "a", "digest": {"sha256": "0" * 64}}],
            "predicateType": "https://example.com/p",
            "predicate": {},
        }
    ).encode()
    assert sigstore.dsse.Statement(payload)._contents == payload
    now = int(time.time())
    claims = {"iss": GITHUB, "sub": "x", "aud": "sigstore", "iat": now, "exp": now + 600}
    token = jwt.encode(claims, "test-only-secret-not-a-real-key-0123456789", algorithm="HS256")
    assert IdentityToken(token)._raw_token == token


def test_expired_errors_are_what_sigstores_signer_raises():
    from sigstore.oidc import ExpiredIdentity

    expired = compat.expired_errors()
    assert ExpiredIdentity in expired
    # sigstore.sign raises the certificate error it imports; it must be the one we catch
    assert sigstore.sign.ExpiredCertificate in expired
    source = inspect.getsource(sigstore.sign)
    assert "raise ExpiredCertificate" in source and "raise ExpiredIdentity" in source


def test_service_errors_are_what_the_fulcio_and_rekor_clients_raise():
    import sigstore._internal.fulcio.client as fulcio
    import sigstore._internal.rekor.client as rekor

    errors = compat.service_errors()
    assert fulcio.FulcioClientError in errors and rekor.RekorClientError in errors
    assert all(issubclass(e, Exception) for e in errors)
    assert "raise FulcioClientError(" in inspect.getsource(fulcio)
    assert "raise RekorClientError(" in inspect.getsource(rekor)
    # and the signer reaches Fulcio through that client module
    assert "fulcio" in inspect.getsource(sigstore.sign).lower()


@pytest.mark.parametrize("instance", ["production", "staging"])
def test_sigstore_still_ships_its_trust_roots(instance: Literal["production", "staging"]):
    from sigstore.models import TrustedRoot

    path = compat.bundled_trusted_root(instance)
    assert path.is_file(), f"sigstore {sigstore.__version__} no longer ships {path}"
    assert TrustedRoot.from_file(str(path)).get_fulcio_certs()


# ------------------------------------------------------------ message wording


@pytest.mark.parametrize("failure", compat.KEYLESS_FAILURES, ids=lambda f: f.reason.value)
def test_every_message_prefix_is_still_sigstores_wording(failure: compat.KeylessFailure):
    """Each prefix must start a string literal somewhere in sigstore-python's source."""
    literal = re.compile(r"""["']""" + re.escape(failure.prefix))
    found = [p for p, text in _sigstore_text().items() if literal.search(text)]
    assert found, (
        f"sigstore {sigstore.__version__} no longer says {failure.prefix!r}: bundles failing "
        "that check would lose their reason; update KEYLESS_FAILURES"
    )


def test_prefixes_are_unambiguous():
    prefixes = [f.prefix for f in compat.KEYLESS_FAILURES]
    assert len(set(prefixes)) == len(prefixes)
    for a in prefixes:
        assert not any(b != a and b.startswith(a) for b in prefixes), a


def test_unknown_wording_is_not_classified():
    assert compat.classify_verification_error(VerificationError("something new")) is None


# ------------------------------------------------- real bundles, real failures


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name / "bundle.sigstore.json").read_bytes())
    return data


def _happy(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(_fixture("happy-path-intoto-in-dsse-v3"))
    edit(doc)
    return doc


def _zero_proof_hash(doc: dict[str, Any]) -> None:
    doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0] = (
        base64.b64encode(bytes(32)).decode()
    )


def _no_integrated_time(doc: dict[str, Any]) -> None:
    doc["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = "0"


def _root_with_other_ct_keys(folder: Path) -> Path:
    """The pinned root with every CT log key replaced: the chain holds, the SCT cannot."""
    root = json.loads(signing.PINNED_TRUSTED_ROOT.read_bytes())
    for log in root["ctlogs"]:
        other = ec.generate_private_key(ec.SECP256R1()).public_key()
        der = other.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        log["publicKey"]["rawBytes"] = base64.b64encode(der).decode()
        log["publicKey"]["keyDetails"] = "PKIX_ECDSA_P256_SHA_256"
    path = folder / "other-ct-root.json"
    path.write_text(json.dumps(root))
    return path


DSSE_CASES: list[tuple[str, Callable[[], dict[str, Any]], str, SignatureFailure]] = [
    ("dsse-invalid-sig", lambda: _fixture("dsse-invalid-sig_fail"), "pinned", SignatureFailure.BAD_SIGNATURE),
    ("dsse-mismatch-envelope", lambda: _fixture("dsse-mismatch-envelope_fail"), "pinned", SignatureFailure.TLOG_MISMATCH),
    ("dsse-mismatch-sig", lambda: _fixture("dsse-mismatch-sig_fail"), "pinned", SignatureFailure.TLOG_MISMATCH),
    ("inclusion-proof", lambda: _happy(_zero_proof_hash), "pinned", SignatureFailure.TLOG_INVALID),
    ("no-verified-time", lambda: _happy(_no_integrated_time), "pinned", SignatureFailure.NO_VERIFIED_TIME),
    ("other-instance", lambda: _happy(lambda d: None), "staging", SignatureFailure.CERT_CHAIN),
    ("other-ct-keys", lambda: _happy(lambda d: None), "other-ct", SignatureFailure.SCT_INVALID),
]


def _root(which: str, tmp_path: Path) -> Path:
    if which == "staging":
        return compat.bundled_trusted_root("staging")
    if which == "other-ct":
        return _root_with_other_ct_keys(tmp_path)
    return signing.PINNED_TRUSTED_ROOT


def _sigstore_refusal(run: Callable[[], object]) -> VerificationError:
    with pytest.raises(VerificationError) as info:
        run()
    return info.value


@needs_fixtures
@pytest.mark.parametrize(
    ("make", "root", "reason"), [c[1:] for c in DSSE_CASES], ids=[c[0] for c in DSSE_CASES]
)
def test_tampered_dsse_bundles_map_to_their_reasons(
    make: Callable[[], dict[str, Any]], root: str, reason: SignatureFailure, tmp_path: Path
):
    from sigstore.models import Bundle as SigstoreBundle
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier

    doc = make()
    root_file = _root(root, tmp_path)
    rule = signing.IdentityRule(issuer=GITHUB, repository=BEACON_REPO)
    # sigstore's own words, classified by the compat table
    verifier = Verifier(trusted_root=TrustedRoot.from_file(str(root_file)))
    bundle = SigstoreBundle.from_json(json.dumps(doc))
    raw = _sigstore_refusal(lambda: verifier.verify_dsse(bundle, rule))
    known = compat.classify_verification_error(raw)
    assert known is not None, f"sigstore's message is no longer recognised: {raw}"
    assert known.reason is reason
    # and the same reason through the harness, with the error class users see
    policy = signing.TrustPolicy(identities=(rule,), trusted_root=root_file)
    with pytest.raises(SignatureError) as info:
        signing.verify_bundle(json.dumps(doc), policy)
    assert info.value.reason is reason
    tlog = reason in (SignatureFailure.TLOG_MISMATCH, SignatureFailure.TLOG_INVALID)
    assert isinstance(info.value, TransparencyLogError) == tlog
    assert f"(sigstore: {raw})" in info.value.message


def _message_bundle(drop_digest: bool) -> str:
    doc = json.loads((FIXTURES / "sigstore-python" / "bundle_v3.txt.sigstore").read_bytes())
    if drop_digest:
        del doc["messageSignature"]["messageDigest"]
    return json.dumps(doc)


@needs_fixtures
@pytest.mark.parametrize(
    ("drop_digest", "reason"),
    [(False, SignatureFailure.MESSAGE_DIGEST_MISMATCH), (True, SignatureFailure.BAD_SIGNATURE)],
    ids=["digest-recorded", "digest-dropped"],
)
def test_message_bundle_over_another_file_maps_to_its_reason(
    drop_digest: bool, reason: SignatureFailure
):
    """sigstore-python's own (staging) message bundle, checked against another file."""
    from sigstore.models import Bundle as SigstoreBundle
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier

    staging = compat.bundled_trusted_root("staging")
    artifact = (FIXTURES / "sigstore-python" / "bundle_v3.txt").read_bytes() + b"!"
    rule = signing.IdentityRule(issuer="https://github.com/login/oauth", san="william@yossarian.net")
    verifier = Verifier(trusted_root=TrustedRoot.from_file(str(staging)))
    bundle = SigstoreBundle.from_json(_message_bundle(drop_digest))
    raw = _sigstore_refusal(lambda: verifier.verify_artifact(artifact, bundle, rule))
    known = compat.classify_verification_error(raw)
    assert known is not None and known.reason is reason, raw
    policy = signing.TrustPolicy(identities=(rule,), trusted_root=staging)
    with pytest.raises(SignatureError) as info:
        signing.verify_message_bundle(_message_bundle(drop_digest), artifact, policy)
    assert info.value.reason is reason


def test_every_reason_in_the_table_is_exercised_by_a_real_bundle():
    covered = {c[3] for c in DSSE_CASES} | {
        SignatureFailure.MESSAGE_DIGEST_MISMATCH,
        SignatureFailure.BAD_SIGNATURE,
    }
    assert {f.reason for f in compat.KEYLESS_FAILURES} <= covered


# --------------------------------------------------- sigstore's Identity policy


def _other_name_cert(san: str) -> x509.Certificate:
    import datetime

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "t")])
    now = datetime.datetime.now(datetime.UTC)
    value = b"\x0c" + bytes([len(san)]) + san.encode()  # DER UTF8String
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(minutes=10))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.OtherName(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7"), value)]
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def test_sigstore_identity_policy_still_misreads_other_name_sans():
    """sigstore's ``Identity`` compares otherName SANs without decoding their DER, so
    harness.signing.identity adds ``_OtherNameSAN``. When sigstore fixes this, this test
    fails: then ``_OtherNameSAN`` can go."""
    from sigstore.verify.policy import Identity

    with pytest.raises(VerificationError, match="do not match"):
        Identity(identity="alice!example.org").verify(_other_name_cert("alice!example.org"))
