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
from harness.dossier.runs import verify_record, verify_run_files
from harness.errors import (
    HarnessError,
    RecordError,
    SignatureError,
    SignatureFailure,
    UntrustedSignerError,
)
from harness.record import BUNDLE_NAME, OUTPUTS_NAME, PREDICATE_TYPE_RUN, RECORD_NAME
from harness.run import RunOptions, run_package

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
    bundle = sign.sign_statement(subjects, PREDICATE_TYPE_RUN, {"resigned": True}, key)
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


# ------------------------------------------- one skeleton: bundle, then digests

RUN_WORDS = sign.AttestationWords(
    wrong_predicate="is not a harness run record",
    wrong_predicate_hint="this bundle signs something else",
    labels={RECORD_NAME: "record", OUTPUTS_NAME: "outputs file"},
    bundle_label="signature bundle",
    restore_hint="restore it from the dossier's copy",
)


def _attest(run_dir: Path, trusted: list[sign.TrustedKey], words: sign.AttestationWords | None = RUN_WORDS,
            predicate_type: str = PREDICATE_TYPE_RUN) -> sign.VerifiedStatement:
    files = {RECORD_NAME: run_dir / RECORD_NAME, OUTPUTS_NAME: run_dir / OUTPUTS_NAME}
    return sign.verify_attestation(run_dir / BUNDLE_NAME, trusted, predicate_type, files, words=words)


def _tamper(run_dir: Path, what: str, cfg: Path) -> None:
    if what.startswith("missing "):
        (run_dir / what.removeprefix("missing ")).unlink()
    elif what.startswith("altered "):
        with (run_dir / what.removeprefix("altered ")).open("ab") as f:
            f.write(b"\n")
    elif what == "other predicate":
        bundle = sign.sign_statement(_subjects(run_dir), "https://example.com/other/v1", {},
                                     sign.load_or_create_key(cfg))
        (run_dir / BUNDLE_NAME).write_bytes(bundle)


TAMPERINGS = [f"missing {n}" for n in (RECORD_NAME, BUNDLE_NAME, OUTPUTS_NAME)] + [
    f"altered {n}" for n in (RECORD_NAME, OUTPUTS_NAME)] + ["other predicate", "untrusted signer"]


@pytest.mark.parametrize("what", TAMPERINGS)
def test_verify_attestation_says_what_verify_run_files_says(run: tuple[Path, Path], tmp_path: Path,
                                                            what: str) -> None:
    """With the run wording, the shared skeleton refuses exactly as run verification does."""
    run_dir, cfg = run
    trusted = sign.default_trust_store(tmp_path / "nobody") if what == "untrusted signer" else \
        sign.default_trust_store(cfg)
    _tamper(run_dir, what, cfg)
    with pytest.raises(HarnessError) as ours:
        _attest(run_dir, trusted)
    with pytest.raises(HarnessError) as theirs:
        verify_run_files(run_dir / RECORD_NAME, run_dir / BUNDLE_NAME, run_dir / OUTPUTS_NAME, trusted)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def test_verify_attestation_reasons_and_default_words(run: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, cfg = run
    trusted = sign.default_trust_store(cfg)
    bundle = run_dir / BUNDLE_NAME
    assert _attest(run_dir, trusted).subjects == _subjects(run_dir)
    # another kind of document: WRONG_PREDICATE, named with the expected type by default
    with pytest.raises(SignatureError) as info:
        _attest(run_dir, trusted, words=None, predicate_type="https://example.com/review/v1")
    assert info.value.reason is SignatureFailure.WRONG_PREDICATE
    assert info.value.message == (f"{bundle}: predicate type {PREDICATE_TYPE_RUN!r} is not "
                                  "'https://example.com/review/v1'")
    # an untrusted signer keeps its class and reason; the message gains the bundle's path
    with pytest.raises(UntrustedSignerError) as untrusted:
        _attest(run_dir, sign.default_trust_store(tmp_path / "nobody"), words=None)
    assert untrusted.value.reason is SignatureFailure.UNTRUSTED_SIGNER
    assert untrusted.value.message.startswith(f"{bundle}: this bundle was signed by key ")
    # a changed file: RecordError naming the file and, by default, its subject name
    with (run_dir / OUTPUTS_NAME).open("ab") as f:
        f.write(b"\n")
    with pytest.raises(RecordError) as changed:
        _attest(run_dir, trusted, words=None)
    assert changed.value.message.startswith(f"{run_dir / OUTPUTS_NAME}: sha256 ")
    assert changed.value.hint == f"{OUTPUTS_NAME} was altered after signing"
    # missing files: the first subject, then the bundle, then the others
    bundle.unlink()
    (run_dir / RECORD_NAME).unlink()
    with pytest.raises(RecordError) as missing:
        _attest(run_dir, trusted, words=None)
    assert str(missing.value) == (f"{run_dir / RECORD_NAME} is missing\n"
                                  "  hint: restore it from a copy of the dossier")
