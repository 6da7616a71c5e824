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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from harness import signing as sign
from harness import signing as trust
from harness.errors import (
    SignatureError,
    TransparencyLogError,
    TrustPolicyError,
    UntrustedSignerError,
)
from harness.signing import policy as policy_module

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "sigstore"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(),
    reason=f"Sigstore fixture bundles not found at {FIXTURES} (they live beside the repo, "
    "in ../shared/fixtures/sigstore, and are never copied into it)",
)

GITHUB = "https://token.actions.githubusercontent.com"
BEACON_REPO = "sigstore-conformance/extremely-dangerous-public-oidc-beacon"
BEACON_WORKFLOW = ".github/workflows/extremely-dangerous-oidc-beacon.yml"
BEACON_SAN = f"https://github.com/{BEACON_REPO}/{BEACON_WORKFLOW}@refs/heads/main"
A_TXT_SHA = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
FAIL_BUNDLES = ["dsse-invalid-sig_fail", "dsse-mismatch-envelope_fail", "dsse-mismatch-sig_fail"]
SIGSTORE_STORE = Path(sigstore.__file__).parent / "_store"


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
    bundled = SIGSTORE_STORE / "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev" / "trusted_root.json"
    if not bundled.is_file():
        pytest.skip(f"the installed sigstore has no bundled production root at {bundled}")
    if bundled.read_bytes() != trust.PINNED_TRUSTED_ROOT.read_bytes():
        pytest.skip(
            f"the installed sigstore {sigstore.__version__} ships a different production root "
            "than the pinned one: consider refreshing it (docs/trust-policy.md)"
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
    assert "DSSE signature does not verify" in errors["dsse-invalid-sig_fail"].message
    assert isinstance(errors["dsse-mismatch-envelope_fail"], TransparencyLogError)
    assert "records a different statement" in errors["dsse-mismatch-envelope_fail"].message
    assert isinstance(errors["dsse-mismatch-sig_fail"], TransparencyLogError)
    assert "records a different signature" in errors["dsse-mismatch-sig_fail"].message
    assert len({e.message for e in errors.values()}) == 3


@needs_fixtures
def test_keyless_tampered_payload_rejected():
    doc = json.loads(fixture_bytes("happy-path-intoto-in-dsse-v3"))
    payload = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    payload["subject"][0]["digest"]["sha256"] = "0" * 64
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    policy = policy_of(trust.IdentityRule(issuer=GITHUB, repository=BEACON_REPO))
    with pytest.raises(SignatureError, match="does not verify|different statement"):
        sign.verify_bundle(json.dumps(doc), policy)


@needs_fixtures
def test_keyless_with_another_trust_root_rejected(tmp_path: Path):
    staging = SIGSTORE_STORE / "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev" / "trusted_root.json"
    if not staging.is_file():
        pytest.skip(f"the installed sigstore has no staging root at {staging}")
    policy = trust.TrustPolicy(
        identities=(trust.IdentityRule(issuer=GITHUB, repository=BEACON_REPO),),
        trusted_root=staging,
    )
    with pytest.raises(SignatureError, match="does not chain to a Fulcio CA") as info:
        sign.verify_bundle(fixture_bytes("happy-path-intoto-in-dsse-v3"), policy)
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
    with pytest.raises(SignatureError, match="does not chain"):
        sign.verify_message_bundle(bundle, artifact, trust.load_trust_policy(production))

    staging = SIGSTORE_STORE / "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev" / "trusted_root.json"
    if not staging.is_file():
        pytest.skip(f"the installed sigstore has no staging root at {staging}")
    shutil.copy(staging, tmp_path / "staging-root.json")
    (tmp_path / "policy.toml").write_text(
        f'schema_version = 1\ntrusted_root = "staging-root.json"\n[[identities]]\n{rule}'
    )
    policy = trust.load_trust_policy(tmp_path / "policy.toml")
    assert policy.trusted_root == tmp_path / "staging-root.json"
    signer = sign.verify_message_bundle(bundle, artifact, policy)
    assert signer == "sigstore:william@yossarian.net (issuer https://github.com/login/oauth)"
    with pytest.raises(SignatureError, match="different file"):
        sign.verify_message_bundle(bundle, artifact + b"!", policy)


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
        sign.PREDICATE_TYPE_RUN,
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
    with pytest.raises(SignatureError, match="altered"):
        sign.verify_bundle(json.dumps(doc), policy)


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


def test_identity_rule_workflow_ref_combination():
    ident = trust.CertificateIdentity(
        sans=("https://github.com/o/r/.github/workflows/e.yml@refs/heads/main",),
        issuer=GITHUB,
        repository="o/r",
        ref="refs/heads/main",
    )
    ok = trust.IdentityRule(issuer=GITHUB, repository="o/r", workflow=".github/workflows/e.yml")
    assert ok.mismatch(ident) is None
    # a reusable workflow from another repository is not "a workflow of o/r"
    reused = trust.CertificateIdentity(
        sans=("https://github.com/x/shared/.github/workflows/e.yml@refs/heads/main",),
        issuer=GITHUB,
        repository="o/r",
        ref="refs/heads/main",
    )
    assert ok.mismatch(reused) is not None
    assert trust.IdentityRule(issuer=GITHUB, repository="o/r").mismatch(reused) is None
    # a prefix of the workflow name is not the workflow
    ident2 = trust.CertificateIdentity(
        sans=("https://github.com/o/r/.github/workflows/e.yml.bak@refs/heads/main",),
        issuer=GITHUB,
        repository="o/r",
        ref="refs/heads/main",
    )
    assert ok.mismatch(ident2) is not None


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
