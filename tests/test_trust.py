"""Tests for harness.trust: trust policy files, identity rules, keyless verification.

Keyless verification is checked against the real Sigstore conformance bundles in
``../shared/fixtures/sigstore`` (read in place, never copied), fully offline, with the
trust root this project pins. The conformance bundles were signed by the
``extremely-dangerous-public-oidc-beacon`` workflow (identity in that folder's
SOURCE.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sigstore
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError
from sigstore.errors import VerificationError

from harness import signing as sign
from harness import signing as trust
from harness.errors import (
    SignatureError,
    SignatureFailure,
    TransparencyLogError,
    TrustPolicyError,
    UntrustedSignerError,
)
from harness.record import PREDICATE_TYPE_RUN
from harness.signing import policy as policy_module
from harness.signing._sigstore_compat import bundled_trusted_root
from harness.signing.identity import IdentityRejectedError

from .conftest import BEACON_REPO, GITHUB_ISSUER, SIGSTORE_FIXTURES, needs_sigstore_fixtures

REPO = Path(__file__).resolve().parents[1]
FIXTURES = SIGSTORE_FIXTURES
needs_fixtures = needs_sigstore_fixtures

GITHUB = GITHUB_ISSUER
BEACON_WORKFLOW = ".github/workflows/extremely-dangerous-oidc-beacon.yml"
BEACON_SAN = f"https://github.com/{BEACON_REPO}/{BEACON_WORKFLOW}@refs/heads/main"
A_TXT_SHA = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
FAIL_BUNDLES = ["dsse-invalid-sig_fail", "dsse-mismatch-envelope_fail", "dsse-mismatch-sig_fail"]


@pytest.fixture(autouse=True)
def _no_policy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(trust.POLICY_ENV, raising=False)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name / "bundle.sigstore.json").read_bytes()


def policy_of(
    *rules: trust.IdentityRule, keys: list[sign.TrustedKey] | None = None
) -> trust.TrustPolicy:
    return trust.TrustPolicy.from_keys(keys or [], rules)


def write_pub(path: Path, key: ec.EllipticCurvePublicKey) -> Path:
    path.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def hint_of(key: ec.EllipticCurvePublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def write_policy(folder: Path, body: str) -> Path:
    path = folder / "policy.toml"
    path.write_text(body)
    return path


# ------------------------------------------------------------------ pinned root


def test_pinned_root_digest_matches_code_and_readme():
    data = trust.PINNED_TRUSTED_ROOT.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == trust.PINNED_TRUSTED_ROOT_SHA256
    readme = (trust.PINNED_TRUSTED_ROOT.parent / "README.md").read_text()
    assert digest in readme
    assert str(len(data)) in readme
    doc = json.loads(data)
    assert doc["mediaType"] == "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
    assert any(t["baseUrl"] == "https://rekor.sigstore.dev" for t in doc["tlogs"])


def test_pinned_root_is_sigstore_pythons_production_root():
    """The pinned root is the one the locked sigstore-python ships; a sigstore upgrade that
    brings a new root must come with the refresh (docs/trust-policy.md), in one commit."""
    bundled = bundled_trusted_root("production")
    assert bundled.is_file(), (
        f"the installed sigstore {sigstore.__version__} has no bundled production root at "
        f"{bundled}: find where it keeps it now (harness/signing/_sigstore_compat.py)"
    )
    assert bundled.read_bytes() == trust.PINNED_TRUSTED_ROOT.read_bytes(), (
        f"the installed sigstore {sigstore.__version__} ships a different production root "
        "than the pinned one: refresh it ('Refreshing the trust root' in docs/trust-policy.md)"
    )


def test_load_pinned_root():
    root = trust.load_trusted_root()
    assert root.get_fulcio_certs()
    assert trust.load_trusted_root() is root  # parsed once, then cached


def test_changed_pinned_root_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    copy = tmp_path / "trusted_root.json"
    copy.write_bytes(trust.PINNED_TRUSTED_ROOT.read_bytes().replace(b"rekor", b"rek0r", 1))
    monkeypatch.setattr(policy_module, "PINNED_TRUSTED_ROOT", copy)
    with pytest.raises(TrustPolicyError, match="it was changed") as info:
        trust.load_trusted_root()
    assert "git checkout" in (info.value.hint or "")


def test_unreadable_and_invalid_root(tmp_path: Path):
    with pytest.raises(TrustPolicyError, match="cannot read the Sigstore trust root"):
        trust.load_trusted_root(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"mediaType": "application/json"}')
    with pytest.raises(TrustPolicyError, match="not a Sigstore trusted root"):
        trust.load_trusted_root(bad)


# ---------------------------------------------------------- keyless: conformance


@needs_fixtures
@pytest.mark.parametrize(
    "rule",
    [
        trust.IdentityRule(issuer=GITHUB, san=BEACON_SAN),
        trust.IdentityRule(issuer=GITHUB, repository=BEACON_REPO),
        trust.IdentityRule(issuer=GITHUB, repository=BEACON_REPO, ref="refs/heads/main"),
        trust.IdentityRule(
            issuer=GITHUB, repository=BEACON_REPO, ref="refs/heads/main", workflow=BEACON_WORKFLOW
        ),
    ],
    ids=["san", "repository", "repository+ref", "repository+ref+workflow"],
)
def test_keyless_fixture_verifies(rule: trust.IdentityRule):
    verified = sign.verify_bundle(fixture_bytes("happy-path-intoto-in-dsse-v3"), policy_of(rule))
    assert verified.subjects == {"a.txt": A_TXT_SHA}
    assert (
        verified.subjects["a.txt"] == hashlib.sha256((FIXTURES / "a.txt").read_bytes()).hexdigest()
    )
    assert verified.predicate_type == "https://slsa.dev/provenance/v1"
    assert verified.signer == f"sigstore:{BEACON_SAN} (issuer {GITHUB})"
    assert verified.policy_entry == rule.describe()
    assert verified.signer_details["repository"] == BEACON_REPO
    assert verified.signer_details["ref"] == "refs/heads/main"
    assert re.fullmatch(r"[0-9a-f]{40}", verified.signer_details["commit"])
    assert verified.signer_details["run_url"].startswith(
        f"https://github.com/{BEACON_REPO}/actions/runs/"
    )


@needs_fixtures
@pytest.mark.parametrize(
    ("rule", "words"),
    [
        (
            trust.IdentityRule(issuer=GITHUB, repository="sigstore-conformance/another-repo"),
            "repository is 'sigstore-conformance/extremely-dangerous-public-oidc-beacon', "
            "not 'sigstore-conformance/another-repo'",
        ),
        (
            trust.IdentityRule(issuer="https://accounts.google.com", san=BEACON_SAN),
            f"issuer is '{GITHUB}', not 'https://accounts.google.com'",
        ),
        (
            trust.IdentityRule(issuer="https://gitlab.com", repository=BEACON_REPO),
            f"issuer is '{GITHUB}', not 'https://gitlab.com'",
        ),
        (
            trust.IdentityRule(issuer=GITHUB, san=BEACON_SAN.replace("main", "dev")),
            "identity is",
        ),
        (
            trust.IdentityRule(issuer=GITHUB, repository=BEACON_REPO, ref="refs/tags/v1"),
            "ref is 'refs/heads/main', not 'refs/tags/v1'",
        ),
        (
            trust.IdentityRule(
                issuer=GITHUB, repository=BEACON_REPO, workflow=".github/workflows/release.yml"
            ),
            "not from .github/workflows/release.yml",
        ),
    ],
    ids=[
        "other-repository",
        "other-issuer",
        "other-issuer-repo",
        "other-san",
        "other-ref",
        "other-workflow",
    ],
)
def test_keyless_fixture_wrong_identity_rejected(rule: trust.IdentityRule, words: str):
    with pytest.raises(UntrustedSignerError) as info:
        sign.verify_bundle(fixture_bytes("happy-path-intoto-in-dsse-v3"), policy_of(rule))
    message = str(info.value)
    assert info.value.reason is SignatureFailure.UNTRUSTED_SIGNER
    assert words in message
    assert f"signed keylessly by {BEACON_SAN} (issuer {GITHUB})" in message
    assert "[[identities]]" in (info.value.hint or "")


@needs_fixtures
def test_keyless_fixture_first_matching_rule_wins():
    rules = (
        trust.IdentityRule(name="release", issuer=GITHUB, repository="org/other"),
        trust.IdentityRule(name="beacon", issuer=GITHUB, repository=BEACON_REPO),
    )
    verified = sign.verify_bundle(fixture_bytes("happy-path-intoto-in-dsse-v3"), policy_of(*rules))
    assert verified.policy_entry == "beacon"


@needs_fixtures
def test_keyless_fixture_needs_an_identity_in_the_policy(tmp_path: Path):
    key = write_pub(tmp_path / "k.pem", ec.generate_private_key(ec.SECP256R1()).public_key())
    keys_only = trust.TrustPolicy.from_keys(sign.load_public_keys([key]))
    with pytest.raises(UntrustedSignerError, match="lists no Sigstore identities"):
        sign.verify_bundle(fixture_bytes("happy-path-intoto-in-dsse-v3"), keys_only)
    with pytest.raises(SignatureError, match="keyless") as info:  # plain key list: no identity
        sign.verify_bundle(fixture_bytes("happy-path-intoto-in-dsse-v3"), keys_only.trusted_keys)
    assert info.value.reason is SignatureFailure.KEYLESS_NEEDS_POLICY
    assert "--trust-policy" in (info.value.hint or "")


@needs_fixtures
def test_fail_bundles_rejected_with_distinct_errors():
    policy = policy_of(trust.IdentityRule(issuer=GITHUB, repository=BEACON_REPO))
    errors: dict[str, SignatureError] = {}
    for name in FAIL_BUNDLES:
        with pytest.raises(SignatureError) as info:
            sign.verify_bundle(fixture_bytes(name), policy)
        assert not isinstance(info.value, UntrustedSignerError), name
        assert info.value.hint, name
        errors[name] = info.value
    assert type(errors["dsse-invalid-sig_fail"]) is SignatureError
    assert errors["dsse-invalid-sig_fail"].reason is SignatureFailure.BAD_SIGNATURE
    assert "DSSE signature does not verify" in errors["dsse-invalid-sig_fail"].message
    assert isinstance(errors["dsse-mismatch-envelope_fail"], TransparencyLogError)
    assert errors["dsse-mismatch-envelope_fail"].reason is SignatureFailure.TLOG_MISMATCH
    assert "records a different statement" in errors["dsse-mismatch-envelope_fail"].message
    assert isinstance(errors["dsse-mismatch-sig_fail"], TransparencyLogError)
    assert errors["dsse-mismatch-sig_fail"].reason is SignatureFailure.TLOG_MISMATCH
    assert "records a different signature" in errors["dsse-mismatch-sig_fail"].message
    assert len({e.message for e in errors.values()}) == 3


@needs_fixtures
def test_keyless_tampered_payload_rejected():
    doc = json.loads(fixture_bytes("happy-path-intoto-in-dsse-v3"))
    payload = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    payload["subject"][0]["digest"]["sha256"] = "0" * 64
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    policy = policy_of(trust.IdentityRule(issuer=GITHUB, repository=BEACON_REPO))
    with pytest.raises(SignatureError) as info:
        sign.verify_bundle(json.dumps(doc), policy)
    assert info.value.reason in (SignatureFailure.BAD_SIGNATURE, SignatureFailure.TLOG_MISMATCH)


@needs_fixtures
def test_keyless_with_another_trust_root_rejected(tmp_path: Path):
    staging = bundled_trusted_root("staging")  # tests/test_sigstore_compat.py: it exists
    policy = trust.TrustPolicy(
        identities=(trust.IdentityRule(issuer=GITHUB, repository=BEACON_REPO),),
        trusted_root=staging,
    )
    with pytest.raises(SignatureError, match="does not chain to a Fulcio CA") as info:
        sign.verify_bundle(fixture_bytes("happy-path-intoto-in-dsse-v3"), policy)
    assert info.value.reason is SignatureFailure.CERT_CHAIN
    assert "Refreshing the trust root" in (info.value.hint or "")


@needs_fixtures
def test_keyless_message_bundle_with_policy_trusted_root(tmp_path: Path):
    """sigstore-python's own bundle_v3 fixture is a *staging* bundle (email identity).

    It is refused against the pinned production root, and verifies when a policy
    names the staging root explicitly in ``trusted_root``.
    """
    bundle = (FIXTURES / "sigstore-python" / "bundle_v3.txt.sigstore").read_bytes()
    artifact = (FIXTURES / "sigstore-python" / "bundle_v3.txt").read_bytes()
    rule = 'issuer = "https://github.com/login/oauth"\nsan = "william@yossarian.net"\n'
    production = write_policy(tmp_path, f"schema_version = 1\n[[identities]]\n{rule}")
    with pytest.raises(SignatureError, match="does not chain") as info:
        sign.verify_message_bundle(bundle, artifact, trust.load_trust_policy(production))
    assert info.value.reason is SignatureFailure.CERT_CHAIN

    shutil.copy(bundled_trusted_root("staging"), tmp_path / "staging-root.json")
    (tmp_path / "policy.toml").write_text(
        f'schema_version = 1\ntrusted_root = "staging-root.json"\n[[identities]]\n{rule}'
    )
    policy = trust.load_trust_policy(tmp_path / "policy.toml")
    assert policy.trusted_root == tmp_path / "staging-root.json"
    signer = sign.verify_message_bundle(bundle, artifact, policy)
    assert signer == "sigstore:william@yossarian.net (issuer https://github.com/login/oauth)"
    with pytest.raises(SignatureError, match="different file") as info:
        sign.verify_message_bundle(bundle, artifact + b"!", policy)
    assert info.value.reason is SignatureFailure.MESSAGE_DIGEST_MISMATCH


# ---------------------------------------------------------- key-signed fixture


@needs_fixtures
def test_key_fixture_verifies_with_its_key_through_a_policy(tmp_path: Path):
    managed = FIXTURES / "managed-key-happy-path"
    hint = json.loads((managed / "bundle.sigstore.json").read_bytes())["verificationMaterial"][
        "publicKey"
    ]["hint"]
    path = write_policy(
        tmp_path,
        f'schema_version = 1\n[[keys]]\nname = "conformance"\npath = "{managed / "key.pub"}"\n'
        f'hint = "{hint}"\n',
    )
    policy = trust.load_trust_policy(path)
    signer = sign.verify_message_bundle(
        (managed / "bundle.sigstore.json").read_bytes(), (FIXTURES / "a.txt").read_bytes(), policy
    )
    assert signer == f"key:{hint}"
    assert policy.key_name(hint) == "conformance"


@needs_fixtures
def test_key_fixture_rejected_with_another_key(tmp_path: Path):
    managed = FIXTURES / "managed-key-happy-path"
    write_pub(tmp_path / "other.pem", ec.generate_private_key(ec.SECP256R1()).public_key())
    policy = trust.load_trust_policy(
        write_policy(tmp_path, 'schema_version = 1\n[[keys]]\npath = "other.pem"\n')
    )
    with pytest.raises(UntrustedSignerError, match="not in the trust policy"):
        sign.verify_message_bundle(
            (managed / "bundle.sigstore.json").read_bytes(),
            (FIXTURES / "a.txt").read_bytes(),
            policy,
        )


# ------------------------------------------------------ harness key bundles, policy


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> sign.SigningKey:
    return sign.load_or_create_key(tmp_path_factory.mktemp("cfg"))


@pytest.fixture(scope="module")
def record_bundle(signing_key: sign.SigningKey) -> bytes:
    return sign.sign_statement(
        {"record.json": "1" * 64, "outputs.jsonl": "2" * 64},
        PREDICATE_TYPE_RUN,
        {"run_id": "r"},
        signing_key,
    )


def test_key_bundle_through_policy_file(
    tmp_path: Path, signing_key: sign.SigningKey, record_bundle: bytes
):
    shutil.copy(signing_key.public_key_path, tmp_path / "team.pub.pem")
    path = write_policy(
        tmp_path,
        f'schema_version = 1\n[[keys]]\nname = "eval team"\npath = "team.pub.pem"\nhint = "{signing_key.hint}"\n',
    )
    verified = sign.verify_bundle(record_bundle, trust.load_trust_policy(path))
    assert verified.signer == f"key:{signing_key.hint}"
    assert verified.policy_entry == "eval team"
    assert verified.signer_details == {}


def test_key_bundle_rejected_by_identity_only_policy(
    record_bundle: bytes, signing_key: sign.SigningKey
):
    policy = policy_of(trust.IdentityRule(issuer=GITHUB, repository="org/repo"))
    with pytest.raises(UntrustedSignerError, match="not in the trust policy") as info:
        sign.verify_bundle(record_bundle, policy)
    assert signing_key.hint in str(info.value)


def test_key_bundle_tampered_rejected_through_policy(
    record_bundle: bytes, signing_key: sign.SigningKey
):
    doc = json.loads(record_bundle)
    doc["dsseEnvelope"]["payload"] = base64.b64encode(b'{"_type": "x"}').decode()
    policy = trust.TrustPolicy.from_keys(sign.load_public_keys([signing_key.public_key_path]))
    with pytest.raises(SignatureError, match="altered") as info:
        sign.verify_bundle(json.dumps(doc), policy)
    assert info.value.reason is SignatureFailure.BAD_SIGNATURE


# ------------------------------------------------------------------ policy files


FULL_POLICY = """
schema_version = 1

[[keys]]
name = "alice"
path = "keys/alice.pub.pem"

[[identities]]
name = "nightly"
issuer = "https://token.actions.githubusercontent.com"
repository = "my-org/evals"
ref = "refs/heads/main"
workflow = ".github/workflows/nightly.yml"

[[identities]]
issuer = "https://accounts.google.com"
san = "auditor@example.org"
"""


def test_load_full_policy(tmp_path: Path):
    (tmp_path / "keys").mkdir()
    alice = ec.generate_private_key(ec.SECP256R1()).public_key()
    write_pub(tmp_path / "keys" / "alice.pub.pem", alice)
    policy = trust.load_trust_policy(write_policy(tmp_path, FULL_POLICY))
    assert policy.source == tmp_path / "policy.toml"
    assert [k.key.hint for k in policy.keys] == [hint_of(alice)]
    assert policy.keys[0].key.source == tmp_path / "keys" / "alice.pub.pem"
    assert policy.trusted_root == trust.PINNED_TRUSTED_ROOT
    assert [r.label for r in policy.identities] == [
        "nightly",
        "auditor@example.org (issuer https://accounts.google.com)",
    ]
    assert policy.describe() == [
        f"key {hint_of(alice)} (alice)",
        "sigstore nightly",
        "sigstore auditor@example.org (issuer https://accounts.google.com)",
    ]
    with pytest.raises(ValidationError):
        policy.identities = ()  # type: ignore[misc]
    with pytest.raises(ValidationError):
        policy.identities[0].issuer = "https://evil.example"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("", "missing 'schema_version = 1'"),
        ("schema_version = 2\n[[keys]]\nhint='x'\n", "schema_version 2 is not supported"),
        ("schema_version = 1\n", "accepts no signer"),
        ("schema_version = 1\nowner = 'me'\n", "unknown key 'owner'"),
        (
            "schema_version = 1\n[[identities]]\nissuer='https://a.example'\nsan='x'\nemail='y'\n",
            "identities[0]: unknown key 'email'",
        ),
        (
            "schema_version = 1\n[[keys]]\npath='k.pem'\nfingerprint='x'\n",
            "keys[0]: unknown key 'fingerprint'",
        ),
        (
            "schema_version = 1\n[[identities]]\nissuer='https://a.example'\n",
            "exactly one of 'san'",
        ),
        (
            "schema_version = 1\n[[identities]]\nissuer='https://a.example'\nsan='x'\nrepository='o/r'\n",
            "exactly one of 'san'",
        ),
        (
            "schema_version = 1\n[[identities]]\nissuer='https://a.example'\nsan='x'\nref='refs/heads/main'\n",
            "only go with 'repository'",
        ),
        (
            "schema_version = 1\n[[identities]]\nissuer='http://a.example'\nsan='x'\n",
            "not an https URL",
        ),
        ("schema_version = 1\n[[identities]]\nsan='x'\n", "identities[0].issuer: Field required"),
        (
            "schema_version = 1\n[[identities]]\nissuer='https://a.example'\nrepository='no-slash'\n",
            "is not 'owner/name'",
        ),
        (
            "schema_version = 1\n[[identities]]\nissuer='https://a.example'\nrepository='o/r'\nref='main'\n",
            "'refs/heads/main'",
        ),
        (
            "schema_version = 1\n[[identities]]\nissuer='https://a.example'\nrepository='o/r'\n"
            "workflow='.github/workflows/x.yml@refs/heads/main'\n",
            "without '@ref'",
        ),
        ("schema_version = 1\n[[keys]]\nname='nothing'\n", "give 'path'"),
        ("schema_version = 1\n[[keys]]\nhint='not base64!'\n", "is not base64"),
        ("schema_version = 1\n[[keys]]\nhint='AAAA'\n", "is not a key hint"),
        ("schema_version = 1\n[[keys]]\npath='missing.pem'\n", "keys[0]: trusted key path"),
        ("schema_version = [1\n", "not valid TOML"),
    ],
)
def test_bad_policy_files(tmp_path: Path, body: str, words: str):
    with pytest.raises(TrustPolicyError) as info:
        trust.load_trust_policy(write_policy(tmp_path, body))
    assert words in str(info.value)
    assert str(tmp_path / "policy.toml") in info.value.message
    assert info.value.hint


def test_missing_policy_file(tmp_path: Path):
    with pytest.raises(TrustPolicyError, match="cannot read the trust policy") as info:
        trust.load_trust_policy(tmp_path / "nope.toml")
    assert "docs/examples/trust-policy.toml" in (info.value.hint or "")


def test_key_entry_hint_must_match_file(tmp_path: Path):
    write_pub(tmp_path / "k.pem", ec.generate_private_key(ec.SECP256R1()).public_key())
    other = hint_of(ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(TrustPolicyError, match="the key file was replaced"):
        trust.load_trust_policy(
            write_policy(
                tmp_path, f'schema_version = 1\n[[keys]]\npath = "k.pem"\nhint = "{other}"\n'
            )
        )


def test_key_entry_refuses_private_keys_and_folders(tmp_path: Path, signing_key: sign.SigningKey):
    with pytest.raises(TrustPolicyError, match="private key"):
        trust.load_trust_policy(
            write_policy(tmp_path, f'schema_version = 1\n[[keys]]\npath = "{signing_key.path}"\n')
        )
    (tmp_path / "dir").mkdir()
    with pytest.raises(TrustPolicyError, match="is a folder"):
        trust.load_trust_policy(
            write_policy(tmp_path, 'schema_version = 1\n[[keys]]\npath = "dir"\n')
        )


def test_hint_only_key_resolved_from_given_keys_or_trust_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    config = tmp_path / "config"
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(config))
    mine = sign.load_or_create_key()  # adds itself to <config>/trusted-keys
    body = f'schema_version = 1\n[[keys]]\nname = "me"\nhint = "{mine.hint}"\n'
    policy = trust.load_trust_policy(write_policy(tmp_path, body))
    assert [k.key.hint for k in policy.keys] == [mine.hint]

    other_pub = ec.generate_private_key(ec.SECP256R1()).public_key()
    other = sign.load_public_keys([write_pub(tmp_path / "o.pem", other_pub)])
    body = f'schema_version = 1\n[[keys]]\nhint = "{hint_of(other_pub)}"\n'
    resolved = trust.load_trust_policy(write_policy(tmp_path, body), keys=other)
    assert resolved.keys[0].key.hint == hint_of(other_pub)
    with pytest.raises(TrustPolicyError, match="no public key with that hint") as info:
        trust.load_trust_policy(write_policy(tmp_path, body))
    assert "trusted-keys" in (info.value.hint or "")


def test_custom_trusted_root_checked_at_load(tmp_path: Path):
    (tmp_path / "root.json").write_text("{}")
    body = (
        'schema_version = 1\ntrusted_root = "root.json"\n[[identities]]\n'
        'issuer = "https://a.example"\nsan = "x"\n'
    )
    with pytest.raises(TrustPolicyError, match="trusted_root: .*not a Sigstore trusted root"):
        trust.load_trust_policy(write_policy(tmp_path, body))


FULCIO_V1 = {"issuer": "1.3.6.1.4.1.57264.1.1", "repository": "1.3.6.1.4.1.57264.1.5",
             "ref": "1.3.6.1.4.1.57264.1.6"}
FULCIO_V2 = {"issuer": "1.3.6.1.4.1.57264.1.8", "repository": "1.3.6.1.4.1.57264.1.12",
             "ref": "1.3.6.1.4.1.57264.1.14"}
MAIN = "refs/heads/main"
WORKFLOW_SAN = "https://github.com/o/r/.github/workflows/e.yml@refs/heads/main"


def der_utf8(text: str) -> bytes:
    """A DER UTF8String, encoded here by hand (not by the code under test)."""
    data = text.encode()
    n = len(data)
    length = bytes([n]) if n < 128 else bytes([0x81, n]) if n < 256 else b"\x82" + n.to_bytes(2, "big")
    return b"\x0c" + length + data


def fulcio_cert(
    san: str | None,
    *,
    issuer: str = GITHUB,
    repository: str | None = None,
    ref: str | None = None,
    v1: bool = True,
    v2: bool = True,
    host: str = "https://github.com",
    other_name: str | None = None,
    raw: dict[str, bytes] | None = None,
) -> x509.Certificate:
    """A self-signed certificate shaped like Fulcio's: SAN plus v1 and/or v2 extensions.

    v1 extensions hold the raw UTF-8 value; v2 ones a DER UTF8String, and the v2
    repository is a URI on ``host``. Identity rules only read these fields.
    """
    import datetime

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "sigstore-intermediate")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(minutes=10))
    )
    names: list[x509.GeneralName] = []
    if san is not None:
        names.append(x509.RFC822Name(san) if "@" in san and "/" not in san else x509.UniformResourceIdentifier(san))
    if other_name is not None:
        names.append(x509.OtherName(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7"), der_utf8(other_name)))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=True)
    values = {"issuer": issuer, "repository": repository, "ref": ref}
    extensions: dict[str, bytes] = {}
    for field, value in values.items():
        if value is None:
            continue
        if v1:
            extensions[FULCIO_V1[field]] = value.encode()
        if v2:
            v2_value = f"{host}/{value}" if field == "repository" else value
            extensions[FULCIO_V2[field]] = der_utf8(v2_value)
    extensions.update(raw or {})
    for oid, data in extensions.items():
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), data), critical=False
        )
    return builder.sign(key, hashes.SHA256())


def test_identity_rule_workflow_ref_combination():
    cert = fulcio_cert(WORKFLOW_SAN, repository="o/r", ref=MAIN)
    ok = trust.IdentityRule(issuer=GITHUB, repository="o/r", workflow=".github/workflows/e.yml")
    assert ok.mismatch(cert) is None
    # a reusable workflow from another repository is not "a workflow of o/r"
    reused = fulcio_cert(
        "https://github.com/x/shared/.github/workflows/e.yml@refs/heads/main",
        repository="o/r",
        ref=MAIN,
    )
    assert ok.mismatch(reused) == (
        "workflow identity is 'https://github.com/x/shared/.github/workflows/e.yml@refs/heads/main'"
        ", not from .github/workflows/e.yml"
    )
    assert trust.IdentityRule(issuer=GITHUB, repository="o/r").mismatch(reused) is None
    # a prefix of the workflow name is not the workflow
    bak = fulcio_cert(WORKFLOW_SAN.replace("e.yml@", "e.yml.bak@"), repository="o/r", ref=MAIN)
    assert "not from .github/workflows/e.yml" in (ok.mismatch(bak) or "")
    # with a ref, the SAN must name that ref too (not only the ref extension)
    on_main = trust.IdentityRule(
        issuer=GITHUB, repository="o/r", ref=MAIN, workflow=".github/workflows/e.yml"
    )
    assert on_main.mismatch(cert) is None
    dev_san = fulcio_cert(WORKFLOW_SAN.replace("heads/main", "heads/dev"), repository="o/r", ref=MAIN)
    assert on_main.mismatch(dev_san) == (
        f"workflow identity is {WORKFLOW_SAN.replace('heads/main', 'heads/dev')!r}, not at {MAIN}"
    )
    on_tag = on_main.model_copy(update={"ref": "refs/tags/v1"})
    assert on_tag.mismatch(cert) == f"ref is {MAIN!r}, not 'refs/tags/v1'"


@pytest.mark.parametrize(("v1", "v2"), [(True, False), (False, True), (True, True)],
                         ids=["v1-extensions", "v2-extensions", "both"])
def test_identity_rules_read_both_fulcio_extension_generations(v1: bool, v2: bool):
    cert = fulcio_cert(WORKFLOW_SAN, repository="o/r", ref=MAIN, v1=v1, v2=v2)
    accepted = [
        trust.IdentityRule(issuer=GITHUB, san=WORKFLOW_SAN),
        trust.IdentityRule(issuer=GITHUB, repository="o/r"),
        trust.IdentityRule(issuer=GITHUB, repository="o/r", ref=MAIN),
        trust.IdentityRule(issuer=GITHUB, repository="o/r", ref=MAIN, workflow=".github/workflows/e.yml"),
    ]
    for rule in accepted:
        assert rule.mismatch(cert) is None, rule
        rule.verify(cert)  # sigstore's VerificationPolicy protocol: no exception
        rule.policy().verify(cert)
    refused = {
        trust.IdentityRule(issuer="https://accounts.google.com", san=WORKFLOW_SAN):
            f"issuer is {GITHUB!r}, not 'https://accounts.google.com'",
        trust.IdentityRule(issuer=GITHUB, san=WORKFLOW_SAN + "x"):
            f"identity is {WORKFLOW_SAN!r}, not {WORKFLOW_SAN + 'x'!r}",
        trust.IdentityRule(issuer=GITHUB, repository="o/other"):
            "repository is 'o/r', not 'o/other'",
        trust.IdentityRule(issuer=GITHUB, repository="o/r", ref="refs/tags/v1"):
            f"ref is {MAIN!r}, not 'refs/tags/v1'",
    }
    for rule, why in refused.items():
        assert rule.mismatch(cert) == why
        with pytest.raises(IdentityRejectedError) as info:
            rule.verify(cert)
        assert isinstance(info.value, VerificationError)  # what sigstore's verifier expects
        assert info.value.why == why
        with pytest.raises(VerificationError):
            rule.policy().verify(cert)


def test_identity_rules_refuse_odd_certificates_without_crashing():
    no_san = fulcio_cert(None, repository="o/r", ref=MAIN)
    san_rule = trust.IdentityRule(issuer=GITHUB, san=WORKFLOW_SAN)
    assert san_rule.mismatch(no_san) == f"identity is None, not {WORKFLOW_SAN!r}"
    with pytest.raises(IdentityRejectedError):
        san_rule.verify(no_san)
    workflow_rule = trust.IdentityRule(issuer=GITHUB, repository="o/r", workflow=".github/workflows/e.yml")
    assert workflow_rule.mismatch(no_san) == "workflow identity is None, not from .github/workflows/e.yml"
    # a v1 issuer that is not UTF-8, and no v2 issuer: refused as "no issuer", not a crash
    garbled = fulcio_cert(WORKFLOW_SAN, v1=False, v2=False, raw={FULCIO_V1["issuer"]: b"\xff\xfe"})
    assert san_rule.mismatch(garbled) == f"issuer is None, not {GITHUB!r}"
    # a v2 issuer that is not DER: the same
    garbled = fulcio_cert(WORKFLOW_SAN, v1=False, v2=False, raw={FULCIO_V2["issuer"]: GITHUB.encode()})
    assert san_rule.mismatch(garbled) == f"issuer is None, not {GITHUB!r}"


def test_identity_rule_accepts_fulcio_other_name_sans():
    """Fulcio's username identities are an otherName SAN (a DER UTF8String)."""
    cert = fulcio_cert(None, issuer="https://idp.example.org", other_name="alice!example.org")
    rule = trust.IdentityRule(issuer="https://idp.example.org", san="alice!example.org")
    assert rule.mismatch(cert) is None
    rule.verify(cert)
    other = trust.IdentityRule(issuer="https://idp.example.org", san="bob!example.org")
    assert other.mismatch(cert) == "identity is 'alice!example.org', not 'bob!example.org'"


def test_repository_rule_for_a_forge_that_is_its_own_issuer():
    """GitLab CI: issuer https://gitlab.com, source repository https://gitlab.com/<repo>."""
    rule = trust.IdentityRule(issuer="https://gitlab.com", repository="group/project")
    on_gitlab = fulcio_cert("https://gitlab.com/group/project//.gitlab-ci.yml@refs/heads/main",
                            issuer="https://gitlab.com", repository="group/project", v1=False,
                            host="https://gitlab.com")
    assert rule.mismatch(on_gitlab) is None
    elsewhere = fulcio_cert("https://gitlab.com/group/project//.gitlab-ci.yml@refs/heads/main",
                            issuer="https://gitlab.com", repository="group/project", v1=False,
                            host="https://forge.example")
    assert rule.mismatch(elsewhere) == (
        "repository 'group/project' is not on https://github.com or https://gitlab.com"
    )


@needs_fixtures
def test_identity_rule_is_enforced_inside_sigstores_verifier():
    """The rule is also sigstore's policy in the verifier (on the proven certificate), and
    its refusal there is recognised by class, not by wording."""
    from sigstore.models import Bundle as SigstoreBundle

    from harness.signing.verify import _keyless_failure

    rule = trust.IdentityRule(issuer=GITHUB, repository="org/other")
    policy = policy_of(rule)
    bundle = SigstoreBundle.from_json(fixture_bytes("happy-path-intoto-in-dsse-v3"))
    with pytest.raises(IdentityRejectedError) as info:
        policy.verifier().verify_dsse(bundle, rule)
    assert info.value.why == f"repository is {BEACON_REPO!r}, not 'org/other'"
    error = _keyless_failure(info.value, policy)
    assert isinstance(error, UntrustedSignerError)
    assert error.reason is SignatureFailure.UNTRUSTED_SIGNER
    assert error.message == f"certificate identity rejected by the trust policy: {info.value.why}"


# -------------------------------------------------------------- resolve_trust


def test_resolve_trust_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signing_key: sign.SigningKey
):
    config = tmp_path / "config"
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(config))
    mine = sign.load_or_create_key()
    # nothing explicit, no default policy: the trust store folder
    assert [k.key.hint for k in trust.resolve_trust().keys] == [mine.hint]
    # --trust-key alone
    only = trust.resolve_trust(trust_keys=[signing_key.public_key_path])
    assert [k.key.hint for k in only.keys] == [signing_key.hint]
    # a default policy in the config folder
    (config / trust.POLICY_FILENAME).write_text(
        'schema_version = 1\n[[identities]]\nissuer = "https://a.example"\nsan = "x"\n'
    )
    assert trust.resolve_trust().source == config / trust.POLICY_FILENAME
    # an explicit policy (argument or environment) plus --trust-key keys
    explicit = write_policy(
        tmp_path, 'schema_version = 1\n[[identities]]\nissuer = "https://b.example"\nsan = "y"\n'
    )
    monkeypatch.setenv(trust.POLICY_ENV, str(explicit))
    resolved = trust.resolve_trust(trust_keys=[signing_key.public_key_path])
    assert resolved.source == explicit
    assert [k.key.hint for k in resolved.keys] == [signing_key.hint]
    assert trust.resolve_trust(explicit).identities[0].san == "y"


# ------------------------------------------------------------------- examples


def test_example_policy_and_workflow_agree():
    yaml = pytest.importorskip("yaml")
    policy = trust.load_trust_policy(REPO / "docs" / "examples" / "trust-policy.toml")
    (rule,) = policy.identities
    assert rule.issuer == trust.GITHUB_ACTIONS_ISSUER
    assert rule.workflow == ".github/workflows/gpu-eval.yml"
    workflow_file = REPO / "docs" / "examples" / Path(rule.workflow).name
    workflow: dict[str, Any] = yaml.safe_load(workflow_file.read_text())
    job = workflow["jobs"]["eval"]
    assert job["permissions"]["id-token"] == "write"
    assert "gpu" in job["runs-on"]
    assert any("--sign sigstore" in str(step.get("run", "")) for step in job["steps"])
    assert any("--trust-policy" in str(step.get("run", "")) for step in job["steps"])
    # the workflow runs on the ref the policy accepts (YAML 1.1 reads the key 'on' as True)
    assert rule.ref is not None
    assert workflow[True]["push"]["branches"] == [rule.ref.removeprefix("refs/heads/")]


# ------------------------------------------- another client: the sigstore CLI


def sigstore_cli(tmp_path: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run sigstore-python's own command line, offline, with its caches in tmp_path."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("SIGSTORE_ID_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "sigstore", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@needs_fixtures
def test_sigstore_cli_recipe_for_auditors(tmp_path: Path):
    """The 'sigstore verify github --offline' recipe in docs/trust-policy.md works."""
    bundle = FIXTURES / "happy-path-intoto-in-dsse-v3" / "bundle.sigstore.json"
    common = ["verify", "github", "--offline", "--bundle", bundle, "--ref", "refs/heads/main"]
    good = sigstore_cli(tmp_path, *common, "--repository", BEACON_REPO, FIXTURES / "a.txt")
    assert good.returncode == 0, good.stderr
    assert "OK:" in good.stderr + good.stdout
    bad = sigstore_cli(
        tmp_path, *common, "--repository", "sigstore-conformance/other", FIXTURES / "a.txt"
    )
    assert bad.returncode != 0
