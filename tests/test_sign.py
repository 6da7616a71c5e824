"""Tests for harness.sign: offline key signing of run records as Sigstore bundles.

The expected values (key hints, PAE bytes, signatures) are recomputed here with
``cryptography`` and ``hashlib`` directly, not through the module under test, so a
bug in ``harness.sign`` cannot hide behind itself. Real bundles made by other
Sigstore clients live in ``../shared/fixtures/sigstore`` and are read in place.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import stat
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigstore.dsse import Statement, _pae
from sigstore_models.bundle.v1 import Bundle

from harness import signing as sign
from harness.errors import (
    SignatureError,
    SignatureFailure,
    SigningError,
    SigningFailure,
    UntrustedSignerError,
)
from harness.record import PREDICATE_TYPE_RUN
from harness.signing.verify import _pae as harness_pae

from .conftest import SIGSTORE_FIXTURES, needs_sigstore_fixtures

FIXTURES = SIGSTORE_FIXTURES
needs_fixtures = needs_sigstore_fixtures
DSSE_FAIL = ["dsse-invalid-sig_fail", "dsse-mismatch-envelope_fail", "dsse-mismatch-sig_fail"]

RECORD_SHA = hashlib.sha256(b"record").hexdigest()
OUTPUTS_SHA = hashlib.sha256(b"outputs").hexdigest()
SUBJECTS = {"run-record.json": RECORD_SHA, "outputs.jsonl": OUTPUTS_SHA}
PREDICATE: dict[str, Any] = {
    "harness": {"version": "0.1.0"},
    "metrics": {"refusal_rate": 0.97, "n": 200},
    "seeds": [1, 2, 3],
    "note": "ünïcode ✓",
    "incomplete": None,
}


def independent_hint(public_key: ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def write_public_key(path: Path, public_key: ec.EllipticCurvePublicKey) -> Path:
    path.write_bytes(
        public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config")


@pytest.fixture(scope="module")
def key(config: Path) -> sign.SigningKey:
    return sign.load_or_create_key(config)


@pytest.fixture(scope="module")
def trusted(key: sign.SigningKey, config: Path) -> list[sign.TrustedKey]:
    return sign.load_public_keys([config / "signing-key.pub.pem"])


@pytest.fixture(scope="module")
def bundle_bytes(key: sign.SigningKey) -> bytes:
    return sign.sign_statement(SUBJECTS, PREDICATE_TYPE_RUN, PREDICATE, key)


def tampered(bundle: bytes, edit: Any) -> bytes:
    """Return ``bundle`` with its JSON edited in place by ``edit(doc)`` (tests only)."""
    doc = json.loads(bundle)
    edit(doc)
    return json.dumps(doc).encode()


# ---------------------------------------------------------------- round trip, format


def test_round_trip(bundle_bytes: bytes, trusted: list[sign.TrustedKey], key: sign.SigningKey):
    verified = sign.verify_bundle(bundle_bytes, trusted)
    assert verified.subjects == SUBJECTS
    assert verified.predicate_type == PREDICATE_TYPE_RUN
    assert verified.predicate == PREDICATE
    assert verified.signer == f"key:{independent_hint(key.public_key)}"
    assert json.loads(verified.statement_bytes)["predicate"] == PREDICATE


def test_verify_accepts_str(bundle_bytes: bytes, trusted: list[sign.TrustedKey]):
    assert sign.verify_bundle(bundle_bytes.decode(), trusted).subjects == SUBJECTS


def test_bundle_is_sigstore_v03(bundle_bytes: bytes, key: sign.SigningKey):
    parsed = Bundle.from_json(bundle_bytes)
    assert parsed.media_type == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert parsed.message_signature is None
    assert parsed.dsse_envelope is not None
    material = parsed.verification_material
    assert material.public_key is not None
    assert material.public_key.hint == independent_hint(key.public_key)
    assert material.certificate is None and material.x509_certificate_chain is None
    assert material.tlog_entries == []
    raw = json.loads(bundle_bytes)
    assert raw["verificationMaterial"]["tlogEntries"] == []
    assert set(raw) == {"mediaType", "verificationMaterial", "dsseEnvelope"}


def test_payload_is_intoto_statement_v1(bundle_bytes: bytes):
    envelope = Bundle.from_json(bundle_bytes).dsse_envelope
    assert envelope is not None
    assert envelope.payload_type == "application/vnd.in-toto+json"
    Statement(envelope.payload)  # raises if not a valid in-toto v1 statement
    doc = json.loads(envelope.payload)
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["predicateType"] == PREDICATE_TYPE_RUN
    assert doc["predicate"] == PREDICATE
    assert doc["subject"] == [
        {"name": "outputs.jsonl", "digest": {"sha256": OUTPUTS_SHA}},
        {"name": "run-record.json", "digest": {"sha256": RECORD_SHA}},
    ]


def test_signature_checks_independently(bundle_bytes: bytes, key: sign.SigningKey):
    """The signature is ECDSA P-256/SHA-256 over the DSSE PAE, checked without harness code."""
    envelope = Bundle.from_json(bundle_bytes).dsse_envelope
    assert envelope is not None
    assert len(envelope.signatures) == 1
    pae = _pae("application/vnd.in-toto+json", envelope.payload)
    assert pae == harness_pae(envelope.payload_type, envelope.payload)
    key.public_key.verify(envelope.signatures[0].sig, pae, ec.ECDSA(hashes.SHA256()))


def test_statement_bytes_are_deterministic(key: sign.SigningKey):
    first = sign.sign_statement(SUBJECTS, PREDICATE_TYPE_RUN, PREDICATE, key)
    second = sign.sign_statement(
        dict(reversed(SUBJECTS.items())), PREDICATE_TYPE_RUN, PREDICATE, key
    )
    payload = [Bundle.from_json(b).dsse_envelope.payload for b in (first, second)]  # type: ignore[union-attr]
    assert payload[0] == payload[1]


def test_uppercase_digest_is_normalised(key: sign.SigningKey, trusted: list[sign.TrustedKey]):
    bundle = sign.sign_statement({"a": RECORD_SHA.upper()}, "https://example.com/p", {}, key)
    assert sign.verify_bundle(bundle, trusted).subjects == {"a": RECORD_SHA}


@pytest.mark.parametrize(
    ("subjects", "predicate", "words"),
    [
        ({}, {}, "at least one subject"),
        ({"a": "xyz"}, {}, "not a sha256"),
        ({"": RECORD_SHA}, {}, "non-empty"),
        ({"a": RECORD_SHA}, {"x": float("nan")}, "not plain JSON"),
        ({"a": RECORD_SHA}, {"x": object()}, "not plain JSON"),
        ({"a": RECORD_SHA}, {"x": (1, 2)}, None),  # tuples become lists: fine, JSON-equal
    ],
)
def test_sign_rejects_bad_input(
    key: sign.SigningKey, subjects: dict[str, str], predicate: dict[str, Any], words: str | None
):
    if words is None:
        sign.sign_statement(subjects, "https://example.com/p", predicate, key)
        return
    with pytest.raises(SigningError, match=words) as info:
        sign.sign_statement(subjects, "https://example.com/p", predicate, key)
    assert info.value.hint
    assert info.value.reason is SigningFailure.BAD_STATEMENT
    assert info.value.exit_code == 2  # bad input, not a failed verification


# ------------------------------------------------------------------------- tampering


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_tampered_payload_rejected(
    bundle_bytes: bytes, trusted: list[sign.TrustedKey], data: st.DataObject
):
    payload = Bundle.from_json(bundle_bytes).dsse_envelope.payload  # type: ignore[union-attr]
    index = data.draw(st.integers(0, len(payload) - 1), label="index")
    mask = data.draw(st.integers(1, 255), label="xor mask")
    changed = bytearray(payload)
    changed[index] ^= mask

    def edit(doc: dict[str, Any]) -> None:
        doc["dsseEnvelope"]["payload"] = b64(bytes(changed))

    with pytest.raises(SignatureError) as info:
        sign.verify_bundle(tampered(bundle_bytes, edit), trusted)
    assert info.value.reason is SignatureFailure.BAD_SIGNATURE
    assert not isinstance(info.value, UntrustedSignerError)
    assert "altered" in str(info.value)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_tampered_signature_rejected(
    bundle_bytes: bytes, trusted: list[sign.TrustedKey], data: st.DataObject
):
    sig = Bundle.from_json(bundle_bytes).dsse_envelope.signatures[0].sig  # type: ignore[union-attr]
    index = data.draw(st.integers(0, len(sig) - 1), label="index")
    mask = data.draw(st.integers(1, 255), label="xor mask")
    changed = bytearray(sig)
    changed[index] ^= mask

    def edit(doc: dict[str, Any]) -> None:
        doc["dsseEnvelope"]["signatures"][0]["sig"] = b64(bytes(changed))

    with pytest.raises(SignatureError, match="does not verify") as info:
        sign.verify_bundle(tampered(bundle_bytes, edit), trusted)
    assert info.value.reason is SignatureFailure.BAD_SIGNATURE


def test_signature_from_other_key_rejected(bundle_bytes: bytes, trusted: list[sign.TrustedKey]):
    """A valid signature by another key, under our hint, must not pass."""
    other = ec.generate_private_key(ec.SECP256R1())
    payload = Bundle.from_json(bundle_bytes).dsse_envelope.payload  # type: ignore[union-attr]
    forged = other.sign(_pae("application/vnd.in-toto+json", payload), ec.ECDSA(hashes.SHA256()))

    def edit(doc: dict[str, Any]) -> None:
        doc["dsseEnvelope"]["signatures"][0]["sig"] = b64(forged)

    with pytest.raises(SignatureError, match="does not verify") as info:
        sign.verify_bundle(tampered(bundle_bytes, edit), trusted)
    assert info.value.reason is SignatureFailure.BAD_SIGNATURE


def test_payload_type_change_rejected(bundle_bytes: bytes, trusted: list[sign.TrustedKey]):
    def edit(doc: dict[str, Any]) -> None:
        doc["dsseEnvelope"]["payloadType"] = "application/json"

    with pytest.raises(SignatureError, match="payload type") as info:
        sign.verify_bundle(tampered(bundle_bytes, edit), trusted)
    assert info.value.reason is SignatureFailure.WRONG_PAYLOAD_TYPE


def test_two_signatures_rejected(bundle_bytes: bytes, trusted: list[sign.TrustedKey]):
    def edit(doc: dict[str, Any]) -> None:
        sigs = doc["dsseEnvelope"]["signatures"]
        sigs.append(dict(sigs[0]))

    with pytest.raises(SignatureError, match="exactly one") as info:
        sign.verify_bundle(tampered(bundle_bytes, edit), trusted)
    assert info.value.reason is SignatureFailure.SIGNATURE_COUNT


@pytest.mark.parametrize(
    "blob",
    [b"", b"not json", b"[]", b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}'],
)
def test_malformed_bundle_rejected(blob: bytes, trusted: list[sign.TrustedKey]):
    with pytest.raises(SignatureError, match="not a valid Sigstore bundle") as info:
        sign.verify_bundle(blob, trusted)
    assert info.value.reason is SignatureFailure.MALFORMED_BUNDLE
    assert info.value.hint


def test_malformed_statement_rejected(key: sign.SigningKey, trusted: list[sign.TrustedKey]):
    """A correctly signed payload that is not an in-toto statement is still refused."""
    payload = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "subject": []}).encode()
    sig = key.private_key.sign(
        _pae("application/vnd.in-toto+json", payload), ec.ECDSA(hashes.SHA256())
    )
    bundle = sign.sign_statement({"a": RECORD_SHA}, "https://example.com/p", {}, key)

    def edit(doc: dict[str, Any]) -> None:
        doc["dsseEnvelope"]["payload"] = b64(payload)
        doc["dsseEnvelope"]["signatures"][0]["sig"] = b64(sig)

    with pytest.raises(SignatureError, match="not an in-toto Statement") as info:
        sign.verify_bundle(tampered(bundle, edit), trusted)
    assert info.value.reason is SignatureFailure.NOT_A_STATEMENT


def test_duplicate_json_keys_rejected(key: sign.SigningKey, trusted: list[sign.TrustedKey]):
    payload = (
        b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":'
        b'{"sha256":"' + RECORD_SHA.encode() + b'"}}],"predicateType":"x",'
        b'"predicate":{"score":1},"predicate":{"score":0}}'
    )
    sig = key.private_key.sign(
        _pae("application/vnd.in-toto+json", payload), ec.ECDSA(hashes.SHA256())
    )
    bundle = sign.sign_statement({"a": RECORD_SHA}, "https://example.com/p", {}, key)

    def edit(doc: dict[str, Any]) -> None:
        doc["dsseEnvelope"]["payload"] = b64(payload)
        doc["dsseEnvelope"]["signatures"][0]["sig"] = b64(sig)

    with pytest.raises(SignatureError, match="duplicate") as info:
        sign.verify_bundle(tampered(bundle, edit), trusted)
    assert info.value.reason is SignatureFailure.NOT_A_STATEMENT


# ------------------------------------------------------------------------------ trust


def test_unknown_key_rejected(bundle_bytes: bytes, tmp_path: Path, key: sign.SigningKey):
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    store = sign.load_public_keys([write_public_key(tmp_path / "other.pem", other)])
    with pytest.raises(UntrustedSignerError) as info:
        sign.verify_bundle(bundle_bytes, store)
    message = str(info.value)
    assert info.value.reason is SignatureFailure.UNTRUSTED_SIGNER
    assert key.hint in message
    assert "--trust-key PATH" in message


def test_empty_trust_store_rejected(bundle_bytes: bytes):
    with pytest.raises(UntrustedSignerError, match="--trust-key"):
        sign.verify_bundle(bundle_bytes, [])


def test_mislabelled_trusted_key_not_used(
    bundle_bytes: bytes, key: sign.SigningKey, tmp_path: Path
):
    """A trust entry claiming our hint but holding another key must not verify anything."""
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    fake = sign.TrustedKey(hint=key.hint, public_key=other, source=tmp_path / "fake.pem")
    with pytest.raises(UntrustedSignerError) as info:
        sign.verify_bundle(bundle_bytes, [fake])
    assert info.value.reason is SignatureFailure.UNTRUSTED_SIGNER


def test_missing_hint_tries_every_trusted_key(
    bundle_bytes: bytes, trusted: list[sign.TrustedKey], tmp_path: Path
):
    def edit(doc: dict[str, Any]) -> None:
        doc["verificationMaterial"]["publicKey"] = {"hint": ""}

    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    others = sign.load_public_keys([write_public_key(tmp_path / "other.pem", other)])
    blob = tampered(bundle_bytes, edit)
    assert sign.verify_bundle(blob, others + trusted).subjects == SUBJECTS
    with pytest.raises(SignatureError, match="any of the 1 trusted keys") as info:
        sign.verify_bundle(blob, others)
    assert info.value.reason is SignatureFailure.BAD_SIGNATURE


def test_load_public_keys_folder(tmp_path: Path, key: sign.SigningKey):
    folder = tmp_path / "keys"
    folder.mkdir()
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    write_public_key(folder / "a.pem", key.public_key)
    write_public_key(folder / "b.pub", other)
    write_public_key(folder / "dup.pem", key.public_key)
    (folder / "README.txt").write_text("ignored: not *.pem or *.pub")
    loaded = sign.load_public_keys([folder])
    assert [t.hint for t in loaded] == [key.hint, independent_hint(other)]
    assert loaded[0].source == folder / "a.pem"


def test_load_public_keys_errors(tmp_path: Path, config: Path):
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    for path, words in [
        (tmp_path / "nope.pem", "does not exist"),
        (junk, "not a PEM public key"),
        (config / "signing-key.pem", "private key"),
    ]:
        with pytest.raises(SignatureError, match=words) as info:
            sign.load_public_keys([path])
        assert info.value.reason is SignatureFailure.BAD_TRUSTED_KEY
    assert "signing-key.pub.pem" in (info.value.hint or "")


# ------------------------------------------------------------------------ key storage


def test_key_created_0600_and_reused(tmp_path: Path):
    first = sign.load_or_create_key(tmp_path)
    assert first.created
    assert first.path == tmp_path / "signing-key.pem"
    if os.name == "posix":
        assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    pem = first.path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, unencrypted
    loaded = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert isinstance(loaded.curve, ec.SECP256R1)

    second = sign.load_or_create_key(tmp_path)
    assert not second.created
    assert second.hint == first.hint
    assert second.path.read_bytes() == pem

    pub = serialization.load_pem_public_key((tmp_path / "signing-key.pub.pem").read_bytes())
    assert independent_hint(pub) == first.hint  # type: ignore[arg-type]
    store = sign.default_trust_store(tmp_path)
    assert [t.hint for t in store] == [first.hint]
    assert store[0].source.parent == tmp_path / "trusted-keys"
    assert "/" not in store[0].source.name


def test_concurrent_first_use_makes_one_key(tmp_path: Path):
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda _: sign.load_or_create_key(tmp_path), range(16)))
    assert len({k.hint for k in keys}) == 1
    assert sum(k.created for k in keys) == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_own_key_verifies_with_default_store(tmp_path: Path):
    key = sign.load_or_create_key(tmp_path)
    bundle = sign.sign_statement(SUBJECTS, PREDICATE_TYPE_RUN, PREDICATE, key)
    assert (
        sign.verify_bundle(bundle, sign.default_trust_store(tmp_path)).signer == f"key:{key.hint}"
    )


def test_removed_trust_entry_not_readded(tmp_path: Path):
    key = sign.load_or_create_key(tmp_path)
    for entry in (tmp_path / "trusted-keys").iterdir():
        entry.unlink()
    sign.load_or_create_key(tmp_path)
    assert sign.default_trust_store(tmp_path) == []
    assert (tmp_path / "signing-key.pub.pem").exists()
    assert sign.load_or_create_key(tmp_path).hint == key.hint


def test_default_trust_store_absent(tmp_path: Path):
    assert sign.default_trust_store(tmp_path / "nothing-here") == []


def test_default_config_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path))
    assert sign.default_config_dir() == tmp_path
    key = sign.load_or_create_key()
    assert key.path == tmp_path / "signing-key.pem"
    monkeypatch.delenv("HARNESS_CONFIG_DIR")
    assert sign.default_config_dir().name == "harness"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"garbage", "not a readable PEM private key"),
        (
            ec.generate_private_key(ec.SECP384R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "not an ECDSA P-256 key",
        ),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"pw"),
            ),
            "encrypted",
        ),
    ],
)
def test_bad_key_file(tmp_path: Path, content: bytes, words: str):
    (tmp_path / "signing-key.pem").write_bytes(content)
    with pytest.raises(SigningError, match=words) as info:
        sign.load_or_create_key(tmp_path)
    assert info.value.reason is SigningFailure.BAD_KEY
    assert info.value.hint


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_world_readable_key_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    key = sign.load_or_create_key(tmp_path)
    key.path.chmod(0o644)
    with caplog.at_level("WARNING", logger="harness.signing.keys"):
        sign.load_or_create_key(tmp_path)
    assert "chmod 600" in caplog.text


def test_key_hint_independent(key: sign.SigningKey):
    assert sign.key_hint(key.public_key) == independent_hint(key.public_key)
    assert key.hint == independent_hint(key.public_key)


# ------------------------------------------------------------------ real fixtures


@pytest.fixture()
def managed() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"Sigstore fixture bundles not found at {FIXTURES}")
    return FIXTURES / "managed-key-happy-path"


@needs_fixtures
def test_fixture_key_hint_matches_bundle(managed: Path):
    (trusted,) = sign.load_public_keys([managed / "key.pub"])
    bundle = json.loads((managed / "bundle.sigstore.json").read_bytes())
    assert trusted.hint == bundle["verificationMaterial"]["publicKey"]["hint"]
    assert trusted.hint == independent_hint(trusted.public_key)  # type: ignore[arg-type]


@needs_fixtures
def test_fixture_message_bundle_verifies(managed: Path):
    trusted = sign.load_public_keys([managed / "key.pub"])
    artifact = (FIXTURES / "a.txt").read_bytes()
    signer = sign.verify_message_bundle(
        (managed / "bundle.sigstore.json").read_bytes(), artifact, trusted
    )
    assert signer == f"key:{trusted[0].hint}"


@needs_fixtures
def test_fixture_message_bundle_other_key_rejected(managed: Path, tmp_path: Path):
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    store = sign.load_public_keys([write_public_key(tmp_path / "other.pem", other)])
    artifact = (FIXTURES / "a.txt").read_bytes()
    with pytest.raises(UntrustedSignerError, match="--trust-key") as info:
        sign.verify_message_bundle((managed / "bundle.sigstore.json").read_bytes(), artifact, store)
    assert info.value.reason is SignatureFailure.UNTRUSTED_SIGNER


@needs_fixtures
def test_fixture_message_bundle_wrong_artifact(managed: Path):
    trusted = sign.load_public_keys([managed / "key.pub"])
    with pytest.raises(SignatureError, match="different file") as info:
        sign.verify_message_bundle(
            (managed / "bundle.sigstore.json").read_bytes(), b"DO NOT MODIFY ME?\n", trusted
        )
    assert info.value.reason is SignatureFailure.MESSAGE_DIGEST_MISMATCH


@needs_fixtures
def test_fixture_message_bundle_signature_checked_without_digest(managed: Path):
    """Dropping the (unsigned) message digest must not let a different file through."""
    trusted = sign.load_public_keys([managed / "key.pub"])

    def edit(doc: dict[str, Any]) -> None:
        del doc["messageSignature"]["messageDigest"]

    blob = tampered((managed / "bundle.sigstore.json").read_bytes(), edit)
    artifact = (FIXTURES / "a.txt").read_bytes()
    assert sign.verify_message_bundle(blob, artifact, trusted).startswith("key:")
    with pytest.raises(SignatureError, match="altered") as info:
        sign.verify_message_bundle(blob, artifact + b"x", trusted)
    assert info.value.reason is SignatureFailure.BAD_SIGNATURE


@needs_fixtures
def test_fixture_message_bundle_is_not_a_statement(managed: Path):
    trusted = sign.load_public_keys([managed / "key.pub"])
    with pytest.raises(SignatureError, match="not a DSSE envelope") as info:
        sign.verify_bundle((managed / "bundle.sigstore.json").read_bytes(), trusted)
    assert info.value.reason is SignatureFailure.WRONG_BUNDLE_KIND


def test_statement_bundle_is_not_a_message_bundle(
    bundle_bytes: bytes, trusted: list[sign.TrustedKey]
):
    with pytest.raises(SignatureError, match="not a message signature") as info:
        sign.verify_message_bundle(bundle_bytes, b"anything", trusted)
    assert info.value.reason is SignatureFailure.WRONG_BUNDLE_KIND


@needs_fixtures
@pytest.mark.parametrize("name", DSSE_FAIL + ["happy-path-intoto-in-dsse-v3"])
def test_fixture_keyless_dsse_rejected_with_key(
    name: str, managed: Path, trusted: list[sign.TrustedKey]
):
    """Keyless (certificate) bundles cannot be checked against keys: clean SignatureError."""
    store = trusted + sign.load_public_keys([managed / "key.pub"])
    with pytest.raises(SignatureError, match="keyless") as info:
        sign.verify_bundle((FIXTURES / name / "bundle.sigstore.json").read_bytes(), store)
    assert info.value.reason is SignatureFailure.KEYLESS_NEEDS_POLICY
    assert not isinstance(info.value, UntrustedSignerError)
    assert info.value.hint


@needs_fixtures
def test_fixture_keyless_message_bundle_rejected_with_key(managed: Path):
    store = sign.load_public_keys([managed / "key.pub"])
    bundle = (FIXTURES / "sigstore-python" / "bundle_v3.txt.sigstore").read_bytes()
    artifact = (FIXTURES / "sigstore-python" / "bundle_v3.txt").read_bytes()
    with pytest.raises(SignatureError, match="keyless") as info:
        sign.verify_message_bundle(bundle, artifact, store)
    assert info.value.reason is SignatureFailure.KEYLESS_NEEDS_POLICY


# ------------------------------------------------------------- keyless signing


ONLINE_TOKEN = os.environ.get("SIGSTORE_ID_TOKEN", "").strip()
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def fake_jwt(**claims: Any) -> str:
    """An unsigned-looking JWT with the claims sigstore checks before any network use."""
    import time

    import jwt

    now = int(time.time())
    body = {
        "iss": GITHUB_ISSUER,
        "sub": "repo:my-org/evals:ref:refs/heads/main",
        "aud": "sigstore",
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(body, "test-only-secret-not-a-real-key-0123456789", algorithm="HS256")


@pytest.fixture()
def no_ambient(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token in the environment and no CI credential, whatever machine runs this."""
    import sigstore.oidc

    monkeypatch.delenv("SIGSTORE_ID_TOKEN", raising=False)
    monkeypatch.setattr(sigstore.oidc, "detect_credential", lambda *a, **k: None)


def test_keyless_without_identity_says_how_to_sign_with_a_key(no_ambient: None):
    with pytest.raises(SigningError) as info:
        sign.sign_statement_keyless(SUBJECTS, PREDICATE_TYPE_RUN, PREDICATE)
    text = str(info.value)
    assert info.value.reason is SigningFailure.NO_IDENTITY
    assert "needs an OIDC identity token, and none was found" in text
    assert "SIGSTORE_ID_TOKEN" in text
    assert "--sign key" in (info.value.hint or "")
    assert info.value.exit_code == 2


def test_keyless_ambient_credential_error(monkeypatch: pytest.MonkeyPatch):
    import sigstore.oidc

    def refuse(*_: Any, **__: Any) -> None:
        raise sigstore.oidc.IdentityError("GitHub: missing or insufficient OIDC token permissions")

    monkeypatch.delenv("SIGSTORE_ID_TOKEN", raising=False)
    monkeypatch.setattr(sigstore.oidc, "detect_credential", refuse)
    with pytest.raises(SigningError, match="insufficient OIDC token permissions") as info:
        sign.sign_statement_keyless(SUBJECTS, PREDICATE_TYPE_RUN, PREDICATE)
    assert info.value.reason is SigningFailure.NO_IDENTITY
    assert "id-token: write" in (info.value.hint or "")
    assert "--sign key" in (info.value.hint or "")


def test_keyless_bad_token_is_not_echoed(monkeypatch: pytest.MonkeyPatch, no_ambient: None):
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", "not-a-jwt-SECRET-VALUE")
    with pytest.raises(SigningError, match=r"\$SIGSTORE_ID_TOKEN is not usable") as info:
        sign.sign_statement_keyless(SUBJECTS, PREDICATE_TYPE_RUN, PREDICATE)
    assert "SECRET-VALUE" not in str(info.value)
    assert info.value.reason is SigningFailure.INVALID_TOKEN
    # an explicit argument wins over the environment
    with pytest.raises(SigningError, match="the identity token passed in") as info:
        sign.sign_statement_keyless(
            SUBJECTS, PREDICATE_TYPE_RUN, PREDICATE, identity_token=fake_jwt(aud="other")
        )
    assert "audience 'sigstore'" in (info.value.hint or "")


def test_keyless_bad_statement_refused_before_any_identity(monkeypatch: pytest.MonkeyPatch):
    import sigstore.oidc

    def boom(*_: Any, **__: Any) -> None:
        raise AssertionError("no identity lookup for a statement that cannot be signed")

    monkeypatch.delenv("SIGSTORE_ID_TOKEN", raising=False)
    monkeypatch.setattr(sigstore.oidc, "detect_credential", boom)
    with pytest.raises(SigningError, match="at least one subject"):
        sign.sign_statement_keyless({}, PREDICATE_TYPE_RUN, PREDICATE)
    with pytest.raises(SigningError, match="not plain JSON"):
        sign.sign_statement_keyless(SUBJECTS, PREDICATE_TYPE_RUN, {"x": float("inf")})


@pytest.mark.parametrize("failure", ["tuf", "connection"])
def test_keyless_without_network_says_how_to_sign_with_a_key(
    monkeypatch: pytest.MonkeyPatch, failure: str
):
    import requests
    from sigstore.errors import TUFError
    from sigstore.models import ClientTrustConfig

    def offline(cls: Any, offline: bool = False) -> Any:
        if failure == "tuf":
            raise TUFError("Failed to refresh TUF metadata")
        raise requests.ConnectionError("Name or service not known")

    monkeypatch.setattr(ClientTrustConfig, "production", classmethod(offline))
    token = fake_jwt()
    with pytest.raises(SigningError) as info:
        sign.sign_statement_keyless(
            SUBJECTS, PREDICATE_TYPE_RUN, PREDICATE, identity_token=token
        )
    text = str(info.value)
    assert info.value.reason is SigningFailure.SIGSTORE_UNREACHABLE
    assert "keyless signing failed" in text
    assert "production services" in text
    assert "network" in (info.value.hint or "")
    assert "--sign key" in (info.value.hint or "")
    assert token not in text


class _RecordedSigstore:
    """Stands in for Sigstore's services: returns a real recorded bundle from sign_dsse.

    Everything the harness does around sigstore-python's Signer (statement building,
    token handling, reading the result, the offline self-check against the pinned
    root) runs for real; only the network exchange is replaced by a bundle that
    Sigstore's production instance once produced for the same statement.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, bundle: bytes) -> None:
        from sigstore.models import Bundle as SigstoreBundle
        from sigstore.models import ClientTrustConfig
        from sigstore.sign import SigningContext

        self.bundle = SigstoreBundle.from_json(bundle)
        self.statements: list[bytes] = []
        self.tokens: list[Any] = []
        recorder = self

        class FakeSigner:
            def sign_dsse(self, statement: Any) -> Any:
                recorder.statements.append(statement._contents)
                return recorder.bundle

        class FakeContext:
            @contextlib.contextmanager
            def signer(self, token: Any, *, cache: bool = True) -> Any:
                recorder.tokens.append(token)
                yield FakeSigner()

        monkeypatch.setattr(ClientTrustConfig, "production", classmethod(lambda cls, **_: object()))
        monkeypatch.setattr(
            SigningContext, "from_trust_config", classmethod(lambda cls, config: FakeContext())
        )


@needs_fixtures
def test_keyless_sign_flow_with_recorded_sigstore_response(monkeypatch: pytest.MonkeyPatch):
    recorded = (FIXTURES / "happy-path-intoto-in-dsse-v3" / "bundle.sigstore.json").read_bytes()
    statement = json.loads(base64.b64decode(json.loads(recorded)["dsseEnvelope"]["payload"]))
    sigstore_services = _RecordedSigstore(monkeypatch, recorded)
    token = fake_jwt()
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", "ignored-because-an-argument-is-given")

    bundle = sign.sign_statement_keyless(
        {s["name"]: s["digest"]["sha256"] for s in statement["subject"]},
        statement["predicateType"],
        statement["predicate"],
        identity_token=token,
    )
    (sent,) = sigstore_services.statements
    assert json.loads(sent) == statement  # the statement handed to sigstore's Signer
    assert sigstore_services.tokens[0]._raw_token == token
    assert json.loads(bundle)["mediaType"] == sign.BUNDLE_MEDIA_TYPE
    assert token.encode() not in bundle


@needs_fixtures
@pytest.mark.parametrize("name", DSSE_FAIL)
def test_keyless_sign_refuses_a_bundle_that_does_not_verify(
    monkeypatch: pytest.MonkeyPatch, name: str
):
    recorded = (FIXTURES / name / "bundle.sigstore.json").read_bytes()
    statement = json.loads(base64.b64decode(json.loads(recorded)["dsseEnvelope"]["payload"]))
    _RecordedSigstore(monkeypatch, recorded)
    with pytest.raises(SigningError, match="does not verify against the pinned") as info:
        sign.sign_statement_keyless(
            {s["name"]: s["digest"]["sha256"] for s in statement["subject"]},
            statement["predicateType"],
            statement["predicate"],
            identity_token=fake_jwt(),
        )
    assert info.value.reason is SigningFailure.SELF_CHECK_FAILED
    assert "Refreshing the trust root" in (info.value.hint or "")


@needs_fixtures
def test_keyless_sign_refuses_a_different_statement(monkeypatch: pytest.MonkeyPatch):
    recorded = (FIXTURES / "happy-path-intoto-in-dsse-v3" / "bundle.sigstore.json").read_bytes()
    _RecordedSigstore(monkeypatch, recorded)
    with pytest.raises(SigningError, match="predicate changed") as info:
        sign.sign_statement_keyless(
            SUBJECTS, PREDICATE_TYPE_RUN, PREDICATE, identity_token=fake_jwt()
        )
    assert info.value.reason is SigningFailure.BAD_STATEMENT


@pytest.mark.skipif(
    not ONLINE_TOKEN,
    reason="online keyless signing needs an OIDC identity token in SIGSTORE_ID_TOKEN "
    "(e.g. from 'sigstore get-identity-token' or a CI job) and network access to "
    "Sigstore; no token is set",
)
def test_keyless_sign_online(tmp_path: Path):
    from harness import signing as trust

    staging = os.environ.get("SIGSTORE_STAGING", "") == "1"
    bundle = sign.sign_statement_keyless(
        SUBJECTS, PREDICATE_TYPE_RUN, PREDICATE, identity_token=ONLINE_TOKEN, staging=staging
    )
    raw = json.loads(bundle)
    assert raw["mediaType"] == sign.BUNDLE_MEDIA_TYPE
    assert raw["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    assert raw["verificationMaterial"]["tlogEntries"]
    from sigstore.models import Bundle as SigstoreBundle

    ident = trust.CertificateIdentity.from_certificate(
        SigstoreBundle.from_json(bundle).signing_certificate
    )
    assert ident.san and ident.issuer
    root = trust.PINNED_TRUSTED_ROOT
    if staging:
        from harness.signing._sigstore_compat import bundled_trusted_root

        root = bundled_trusted_root("staging")
    policy = trust.TrustPolicy(
        identities=(trust.IdentityRule(issuer=ident.issuer, san=ident.san),), trusted_root=root
    )
    verified = sign.verify_bundle(bundle, policy)
    assert verified.subjects == SUBJECTS
    assert verified.predicate == PREDICATE
    assert verified.signer == f"sigstore:{ident.san} (issuer {ident.issuer})"
    other = trust.TrustPolicy(
        identities=(trust.IdentityRule(issuer="https://issuer.invalid", san=ident.san),),
        trusted_root=root,
    )
    with pytest.raises(UntrustedSignerError):
        sign.verify_bundle(bundle, other)


@pytest.mark.skipif(
    not shutil.which("openssl"), reason="the OpenSSL recipe needs the openssl command"
)
def test_openssl_recipe(bundle_bytes: bytes, key: sign.SigningKey, tmp_path: Path):
    """Steps 1-3 of the OpenSSL recipe in docs/signing.md, run as written."""
    import re
    import subprocess

    doc = (Path(__file__).resolve().parents[1] / "docs" / "signing.md").read_text()
    script = re.search(r"python3 - record\.sigstore\.json <<'EOF'\n(.*?)\nEOF\n", doc, re.S)
    assert script, "the OpenSSL recipe's Python step is missing from docs/signing.md"
    (tmp_path / "record.sigstore.json").write_bytes(bundle_bytes)
    shutil.copy(key.public_key_path, tmp_path / "alice.pub.pem")

    def sh(cmd: str) -> str:
        done = subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    (tmp_path / "step1.py").write_text(script.group(1))
    out = sh(f"{sys.executable} step1.py record.sigstore.json")
    assert f"key hint:    {key.hint}" in out
    hint = sh(
        "openssl pkey -pubin -in alice.pub.pem -outform DER | openssl dgst -sha256 -binary | base64"
    )
    assert hint.strip() == key.hint
    assert "Verified OK" in sh(
        "openssl dgst -sha256 -verify alice.pub.pem -signature sig.der pae.bin"
    )
    assert json.loads((tmp_path / "statement.json").read_bytes())["predicate"] == PREDICATE
    (tmp_path / "pae.bin").write_bytes((tmp_path / "pae.bin").read_bytes() + b" ")
    bad = subprocess.run(
        "openssl dgst -sha256 -verify alice.pub.pem -signature sig.der pae.bin",
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0


# -------------------------------------------------- another client: sigstore-js


JS_DIR = Path(__file__).resolve().parent / "js"
BEACON_SAN = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)


_NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH",
                   "EHOSTUNREACH", "ERR_SOCKET_TIMEOUT")
"""npm's codes for a registry it cannot reach; any other failure of ``npm ci`` (a broken
lockfile, say) fails the test instead of skipping it."""


@pytest.fixture(scope="session")
def sigstore_js() -> Any:
    """Run tests/js/verify.mjs (sigstore-js's @sigstore/verify) on a bundle.

    The npm packages are installed once with ``npm ci`` from the committed lockfile
    into a cache folder named after the lockfile's digest, outside the repository.
    """
    import subprocess

    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("sigstore-js cross-check needs node (>= 20.17) and npm on PATH; not found")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
    if (major, minor) < (20, 17):
        pytest.skip(f"sigstore-js 3.x needs node >= 20.17; found {version}")

    lock = (JS_DIR / "package-lock.json").read_bytes() + (JS_DIR / "package.json").read_bytes()
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = (
        cache_root / "llm-safety-harness" / f"sigstore-js-{hashlib.sha256(lock).hexdigest()[:16]}"
    )
    if not (target / "node_modules" / "@sigstore" / "verify" / "package.json").is_file():
        staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(JS_DIR / name, staging / name)
        try:
            done = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=staging,
                capture_output=True,
                text=True,
                timeout=180,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci for the sigstore-js cross-check timed out (registry unreachable?)")
        if done.returncode != 0:
            text = done.stderr or done.stdout
            tail = " | ".join(text.strip().splitlines()[-3:])
            if any(code in text for code in _NETWORK_ERRORS):
                pytest.skip(f"npm ci for the sigstore-js cross-check cannot reach the registry: {tail}")
            pytest.fail(f"npm ci for the sigstore-js cross-check failed (not for want of a network): {tail}")
        if target.exists():  # another process finished first
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.rename(target)
    shutil.copy(JS_DIR / "verify.mjs", target / "verify.mjs")

    def run(bundle: Path, **options: str | Path) -> dict[str, Any]:
        args = [node, str(target / "verify.mjs"), "--bundle", str(bundle)]
        for name, value in options.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["ok"] == (done.returncode == 0), done.stderr
        return result

    return run


def test_sigstore_js_verifies_our_key_bundle(
    sigstore_js: Any, bundle_bytes: bytes, key: sign.SigningKey, tmp_path: Path
):
    path = tmp_path / "record.sigstore.json"
    path.write_bytes(bundle_bytes)
    result = sigstore_js(path, key=key.public_key_path)
    assert result == {"ok": True, "keySigned": True, "hint": key.hint, "identity": None}


def test_sigstore_js_rejects_our_bundle_with_another_key(
    sigstore_js: Any, bundle_bytes: bytes, tmp_path: Path
):
    path = tmp_path / "record.sigstore.json"
    path.write_bytes(bundle_bytes)
    other = write_public_key(
        tmp_path / "other.pem", ec.generate_private_key(ec.SECP256R1()).public_key()
    )
    result = sigstore_js(path, key=other)
    assert not result["ok"]
    assert result["code"] == "PUBLIC_KEY_ERROR"


def test_sigstore_js_rejects_our_tampered_bundle(
    sigstore_js: Any, bundle_bytes: bytes, key: sign.SigningKey, tmp_path: Path
):
    def edit(doc: dict[str, Any]) -> None:
        payload = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
        payload["predicate"]["metrics"]["refusal_rate"] = 1.0
        doc["dsseEnvelope"]["payload"] = b64(json.dumps(payload).encode())

    path = tmp_path / "record.sigstore.json"
    path.write_bytes(tampered(bundle_bytes, edit))
    result = sigstore_js(path, key=key.public_key_path)
    assert not result["ok"]
    assert result["code"] == "SIGNATURE_ERROR"


@needs_fixtures
def test_sigstore_js_verifies_key_fixture(sigstore_js: Any, managed: Path, tmp_path: Path):
    from harness import signing as trust

    result = sigstore_js(
        managed / "bundle.sigstore.json",
        key=managed / "key.pub",
        artifact=FIXTURES / "a.txt",
        trusted_root=trust.PINNED_TRUSTED_ROOT,
    )
    assert result["ok"]
    other = write_public_key(
        tmp_path / "other.pem", ec.generate_private_key(ec.SECP256R1()).public_key()
    )
    assert not sigstore_js(
        managed / "bundle.sigstore.json",
        key=other,
        artifact=FIXTURES / "a.txt",
        trusted_root=trust.PINNED_TRUSTED_ROOT,
    )["ok"]


@needs_fixtures
def test_sigstore_js_agrees_on_keyless_fixtures(sigstore_js: Any):
    from harness import signing as trust

    def check(name: str, issuer: str = GITHUB_ISSUER) -> dict[str, Any]:
        return sigstore_js(
            FIXTURES / name / "bundle.sigstore.json",
            trusted_root=trust.PINNED_TRUSTED_ROOT,
            san=BEACON_SAN,
            issuer=issuer,
        )

    good = check("happy-path-intoto-in-dsse-v3")
    assert good["ok"]
    assert good["identity"] == {"san": BEACON_SAN, "issuer": GITHUB_ISSUER}
    assert not check("happy-path-intoto-in-dsse-v3", "https://accounts.google.com")["ok"]
    for name in DSSE_FAIL:
        assert not check(name)["ok"], name
