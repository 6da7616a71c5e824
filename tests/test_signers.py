"""Who signed, and what: a valid signature by the wrong signer, or over the wrong digest, is refused.

Complements test_sign.py / test_trust.py (which test bundles on their own) at the level
of a real run folder, through the library and the `harness verify` command line.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from harness import signing as sign
from harness.cli import main
from harness.errors import RecordError, UntrustedSignerError
from harness.record import OUTPUTS_NAME, RECORD_NAME
from harness.run import RunOptions, run_package
from harness.verify import verify_record

from .fake_openai import FakeOpenAI


@pytest.fixture
def run(pkg_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    with FakeOpenAI() as srv:
        res = run_package(RunOptions(package=pkg_dir, endpoint=srv.url, model="fake-model", limit=5,
                                     dossiers_dir=tmp_path / "d", config_dir=tmp_path / "cfg", progress=False))
    return res.run_dir, tmp_path / "cfg"


def _subjects(run_dir: Path) -> dict[str, str]:
    return {n: hashlib.sha256((run_dir / n).read_bytes()).hexdigest() for n in (RECORD_NAME, OUTPUTS_NAME)}


def _resign(run_dir: Path, subjects: dict[str, str], key: sign.SigningKey) -> None:
    bundle = sign.sign_statement(subjects, sign.PREDICATE_TYPE_RUN, {"resigned": True}, key)
    (run_dir / "record.sigstore.json").write_bytes(bundle)


def _policy(tmp_path: Path, key: sign.SigningKey, *, identity_only: bool = False) -> Path:
    pub = key.private_key.public_key()
    pem = tmp_path / "honest.pub.pem"
    pem.write_bytes(pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    body = "schema_version = 1\n"
    if identity_only:
        body += ('[[identities]]\nname = "ci"\nissuer = "https://token.actions.githubusercontent.com"\n'
                 'repository = "my-org/evals"\n')
    else:
        body += f'[[keys]]\nname = "honest"\npath = "{pem.name}"\nhint = "{sign.key_hint(pub)}"\n'
    policy = tmp_path / "policy.toml"
    policy.write_text(body)
    return policy


def test_a_record_signed_by_an_unlisted_key_is_refused(run: tuple[Path, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, cfg = run
    honest = sign.load_or_create_key(cfg)
    other = sign.load_or_create_key(tmp_path / "attacker")  # a valid key, just not one anyone trusts
    policy = _policy(tmp_path, honest)
    assert main(["verify", str(run_dir), "--trust-policy", str(policy)]) == 0
    _resign(run_dir, _subjects(run_dir), other)  # a perfectly valid signature over the right digests
    with pytest.raises(UntrustedSignerError):
        verify_record(run_dir, sign.default_trust_store(cfg))
    capsys.readouterr()
    assert main(["verify", str(run_dir), "--trust-policy", str(policy)]) == 1
    err = capsys.readouterr().err
    assert "record.sigstore.json" in err
    # The same bundle verifies for whoever does trust that key: it is the signer that is refused.
    assert verify_record(run_dir, sign.default_trust_store(tmp_path / "attacker")).record.run_id


def test_a_key_signed_record_is_refused_by_an_identity_only_policy(run: tuple[Path, Path], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run_dir, cfg = run
    policy = _policy(tmp_path, sign.load_or_create_key(cfg), identity_only=True)
    assert main(["verify", str(run_dir), "--trust-policy", str(policy)]) == 1
    assert "record.sigstore.json" in capsys.readouterr().err


@pytest.mark.parametrize("what", ["outputs digest of other bytes", "outputs missing", "record digest of other bytes"])
def test_a_valid_signature_over_the_wrong_digest_is_refused(run: tuple[Path, Path], what: str) -> None:
    run_dir, cfg = run
    key = sign.load_or_create_key(cfg)  # the trusted key: the signature itself is fine
    subjects = _subjects(run_dir)
    if what == "outputs digest of other bytes":
        subjects[OUTPUTS_NAME] = hashlib.sha256(b"other answers\n").hexdigest()
    elif what == "outputs missing":
        del subjects[OUTPUTS_NAME]
    else:
        subjects[RECORD_NAME] = hashlib.sha256(b"{}").hexdigest()
    _resign(run_dir, subjects, key)
    with pytest.raises(RecordError) as exc:
        verify_record(run_dir, sign.default_trust_store(cfg))
    named = RECORD_NAME if what.startswith("record") else OUTPUTS_NAME
    assert named in str(exc.value) and "signed digest" in str(exc.value)
