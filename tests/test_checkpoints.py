"""Signed checkpoints: a dossier cannot be rewritten unnoticed, even by someone holding a trusted key.

Each attack here is made the way a dishonest keeper would make it: with the trusted key
that signed every record, the hash chain recomputed after the edit, and (where said) a
fresh checkpoint signed with that same key over the rewritten log. What still catches
it is named in each test: the checkpoint (when the attacker cannot sign one), the
signed bindings of each record (package, previous entry, no replay), and the checkpoint
the verifier remembers from an earlier check or was given as published.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import signing as sign
from harness._internal.hashing import sha256_bytes, sha256_file
from harness.cli import main
from harness.dossier.checkpoint import (
    CHECKPOINT_BUNDLE_NAME,
    CHECKPOINT_NAME,
    ecdsa_key_id,
    parse_checkpoint,
    verifier_key,
)
from harness.dossier.log import GENESIS, Dossier, parse_entry
from harness.dossier.verify import DossierReport, ProblemKind, verify_dossier
from harness.dossier.witness import CheckpointMemory
from harness.journal import WorkDir, commit_run
from harness.record import OUTPUTS_NAME, PREDICATE_TYPE_RUN, RunRecord, parse_record
from harness.run import RunOptions, run_package
from harness.signing.signers import KeySigner, Signed

from .fake_openai import FakeOpenAI

K = ProblemKind


@dataclass(frozen=True)
class Template:
    record: RunRecord
    outputs: Path
    cfg: Path

    @property
    def trusted(self) -> list[sign.TrustedKey]:
        return sign.default_trust_store(self.cfg)

    @property
    def signer(self) -> KeySigner:
        return KeySigner(self.cfg)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, pkg_dir_module: Path) -> Template:
    """One real, small run (5 samples through the loopback fake) and the key that signed it."""
    base = tmp_path_factory.mktemp("template")
    with FakeOpenAI() as srv:
        res = run_package(RunOptions(package=pkg_dir_module, endpoint=srv.url, model="fake-model", limit=5,
                                     dossiers_dir=base / "d", config_dir=base / "cfg", progress=False))
    return Template(parse_record(res.run_dir / "record.json"), res.run_dir / OUTPUTS_NAME, base / "cfg")


@pytest.fixture(scope="module")
def pkg_dir_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = Path(__file__).resolve().parents[1]
    ws = tmp_path_factory.mktemp("ws")
    shutil.copytree(repo / "packages" / "mini-safety", ws / "packages" / "mini-safety")
    shutil.copytree(repo / "lockfiles", ws / "lockfiles")
    return ws / "packages" / "mini-safety"


def _signed_run(t: Template, d: Dossier, run_id: str, *, package: str | None = None,
                previous: str | None | bool = True) -> tuple[RunRecord, bytes, Path]:
    """A run record signed with the trusted key: of ``package`` if given, naming the dossier's
    head as its predecessor (or ``previous`` when given)."""
    data = t.record.model_dump(mode="json")
    data["run_id"] = run_id
    if package:
        data["package"]["name"] = package
    seq, head = d.head()
    data["previous_entry"] = (head if seq else None) if previous is True else previous
    record = RunRecord.model_validate(data)
    d.root.parent.mkdir(parents=True, exist_ok=True)
    out = d.root.parent / f"{d.root.name}-{run_id}.jsonl"
    shutil.copyfile(t.outputs, out)
    subjects = {"record.json": sha256_bytes(record.to_bytes()), OUTPUTS_NAME: sha256_file(out)}
    summary = {"run_id": run_id, "package": record.package.name, "version": record.package.version,
               "seal": record.package.seal, "model_digest": record.model.digest,
               "outputs_content_sha256": record.outputs.content_sha256}
    bundle = sign.sign_statement(subjects, PREDICATE_TYPE_RUN, summary, sign.load_or_create_key(t.cfg))
    return record, bundle, out


def _add(t: Template, d: Dossier, run_id: str, **kw: object) -> None:
    record, bundle, out = _signed_run(t, d, run_id, **kw)  # type: ignore[arg-type]
    d.add_run(record, bundle, out, checkpoint=t.signer)


def _dossier(t: Template, root: Path, n: int = 3) -> Dossier:
    d = Dossier(root / "mini-safety")
    for i in range(n):
        _add(t, d, f"run-{i + 1}")
    return d


def _rechain(d: Dossier, lines: list[bytes]) -> None:
    """Write ``lines`` as the log with seq and prev recomputed, as an attacker with write access would."""
    prev, out = GENESIS, []
    for seq, raw in enumerate(lines, 1):
        e = parse_entry(raw).model_copy(update={"seq": seq, "prev": prev})
        line = e.line()
        out.append(line + b"\n")
        prev = sha256_bytes(line)
    d.log.write_bytes(b"".join(out))


def _lines(d: Dossier) -> list[bytes]:
    return d.log.read_bytes().splitlines()


def _resign(t: Template, d: Dossier) -> None:
    """The attacker signs a fresh checkpoint over the rewritten log with the trusted key."""
    (d.root / CHECKPOINT_NAME).unlink()
    d.sign_checkpoint(t.signer)


def _verify(t: Template, d: Dossier, memory: Path, **kw: object) -> DossierReport:
    return verify_dossier(d, t.trusted, memory=CheckpointMemory(memory), **kw)  # type: ignore[arg-type]


def test_every_append_leaves_a_checkpoint_of_the_whole_log(template: Template, tmp_path: Path) -> None:
    d = _dossier(template, tmp_path)
    cp = parse_checkpoint((d.root / CHECKPOINT_NAME).read_bytes())
    lines = _lines(d)
    assert cp.head.size == 3 and cp.head.origin == f"llm-safety-harness/dossier/mini-safety/{sha256_bytes(lines[0])}"
    report = _verify(template, d, tmp_path / "mem")
    assert report.ok, report.problems
    assert report.checkpoint is not None and report.checkpoint.signer.startswith("key:")
    assert not report.warnings  # every record names the entry just before its own
    # the note's key ID is the first four bytes of the key's Sigstore hint (SHA-256 of its DER SPKI)
    key = sign.load_or_create_key(template.cfg)
    assert cp.signatures[0].key_id == base64.b64decode(key.hint)[:4] == ecdsa_key_id(key.public_key)
    assert verifier_key(cp.head.origin, key.public_key).split("+")[1] == cp.signatures[0].key_id.hex()
    assert parse_checkpoint(cp.to_bytes()) == cp


@pytest.mark.parametrize("resign", [False, True])
def test_substitution_by_another_validly_signed_run(template: Template, tmp_path: Path, resign: bool) -> None:
    d = _dossier(template, tmp_path)
    _verify(template, d, tmp_path / "mem")  # the auditor saw the honest log once
    other = _dossier(template, tmp_path / "elsewhere", 2)  # validly signed runs from another log
    lines = _lines(d)
    lines[1] = _lines(other)[1]
    shutil.copytree(other.root / "runs" / "run-2", d.root / "runs" / "run-2", dirs_exist_ok=True)
    _rechain(d, lines)
    if resign:
        _resign(template, d)
    report = _verify(template, d, tmp_path / "mem")
    assert not report.ok
    assert K.CHECKPOINT_MISMATCH in report.kinds() if not resign else {K.NOT_CONSISTENT} <= report.kinds()
    assert report.entries == 3


@pytest.mark.parametrize("resign", [False, True])
def test_another_packages_run_is_foreign(template: Template, tmp_path: Path, resign: bool) -> None:
    d = _dossier(template, tmp_path, 2)
    record, bundle, out = _signed_run(template, d, "foreign", package="other-bench")
    d.add_run(record, bundle, out, checkpoint=template.signer)  # even appended honestly, with a checkpoint
    lines = _lines(d)
    e = parse_entry(lines[2]).model_copy(update={"package": "mini-safety"})  # the entry lies about it, too
    _rechain(d, [*lines[:2], e.line()])
    if resign:
        _resign(template, d)
    report = _verify(template, d, tmp_path / "mem")
    assert K.FOREIGN_PACKAGE in report.kinds() and not report.ok
    assert not verify_dossier("mini-safety", template.trusted, dossiers_dir=tmp_path,
                              memory=CheckpointMemory(tmp_path / "m2")).ok


@pytest.mark.parametrize("resign", [False, True])
def test_middle_deletion(template: Template, tmp_path: Path, resign: bool) -> None:
    d = _dossier(template, tmp_path)
    lines = _lines(d)
    _rechain(d, [lines[0], lines[2]])
    if resign:
        _resign(template, d)
    report = _verify(template, d, tmp_path / "mem")  # no memory: the record of run 3 still names the lost entry 2
    assert not report.ok
    assert (K.PREVIOUS_ENTRY if resign else K.CHECKPOINT_MISMATCH) in report.kinds()


@pytest.mark.parametrize("resign", [False, True])
def test_reorder(template: Template, tmp_path: Path, resign: bool) -> None:
    d = _dossier(template, tmp_path)
    lines = _lines(d)
    _rechain(d, [lines[0], lines[2], lines[1]])
    if resign:
        _resign(template, d)
    report = _verify(template, d, tmp_path / "mem")
    assert not report.ok
    assert (K.PREVIOUS_ENTRY if resign else K.CHECKPOINT_MISMATCH) in report.kinds()


def test_replay(template: Template, tmp_path: Path) -> None:
    d = _dossier(template, tmp_path)
    lines = _lines(d)
    _rechain(d, [*lines, lines[1]])
    _resign(template, d)
    report = _verify(template, d, tmp_path / "mem")
    assert K.DUPLICATE in report.kinds() and not report.ok


def test_truncation_against_a_remembered_checkpoint(template: Template, tmp_path: Path) -> None:
    d = _dossier(template, tmp_path)
    assert _verify(template, d, tmp_path / "mem").ok  # remembered: 3 entries
    _rechain(d, _lines(d)[:2])
    report = _verify(template, d, tmp_path / "mem")
    assert K.CHECKPOINT_MISMATCH in report.kinds()  # the stored checkpoint covers 3
    _resign(template, d)  # a keeper with the key signs the shorter log: only the memory knows
    report = _verify(template, d, tmp_path / "mem")
    assert report.kinds() == {K.NOT_CONSISTENT}
    what = report.problems[0].what
    assert "shorter" in what and "before 3 entries, root" in what and "now 2 entries, root" in what
    assert _verify(template, d, tmp_path / "fresh-verifier").ok  # a verifier who never saw more cannot tell


def test_fork_two_dossiers_sharing_a_prefix(template: Template, tmp_path: Path) -> None:
    a = _dossier(template, tmp_path / "a", 2)
    b_root = tmp_path / "b" / "mini-safety"
    shutil.copytree(a.root, b_root)
    b = Dossier(b_root)
    _add(template, a, "only-in-a")
    _add(template, b, "only-in-b")
    assert _verify(template, a, tmp_path / "mem").ok
    report = _verify(template, b, tmp_path / "mem")  # the same origin, the same size, another third entry
    assert report.kinds() == {K.NOT_CONSISTENT} and "forked" in report.problems[0].what
    root_a = parse_checkpoint((a.root / CHECKPOINT_NAME).read_bytes()).head.root.hex()
    assert root_a in report.problems[0].what  # both tree heads are shown
    _add(template, a, "a-grows")
    assert _verify(template, a, tmp_path / "mem").ok  # growth is not a fork


def test_published_checkpoint(template: Template, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _dossier(template, tmp_path, 2)
    args = ["--dossiers", str(tmp_path), "--trust-key", str(template.cfg / "signing-key.pub.pem")]
    assert main(["dossier", "checkpoint", "mini-safety", "--dossiers", str(tmp_path)]) == 0
    published = tmp_path / "published.checkpoint"
    published.write_text(capsys.readouterr().out)
    _add(template, d, "later")
    assert main(["dossier", "verify", "mini-safety", "--checkpoint", str(published), "--json", *args]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["published"]["size"] == 2 and out["checkpoint"]["size"] == 3
    _rechain(d, _lines(d)[:1])
    _resign(template, d)
    assert main(["dossier", "verify", "mini-safety", "--checkpoint", str(published), "--json", *args]) == 1
    out = json.loads(capsys.readouterr().out)
    assert {p["kind"] for p in out["problems"]} == {"not-consistent"}  # the published and the remembered one
    assert any("published" in p["what"] for p in out["problems"])
    other = _dossier(template, tmp_path / "x", 1)
    code = main(["dossier", "verify", "mini-safety", "--checkpoint", str(other.root / CHECKPOINT_NAME), *args])
    assert code == 1 and "another log" in capsys.readouterr().out


def test_missing_final_newline_keeps_the_entry(template: Template, tmp_path: Path) -> None:
    d = _dossier(template, tmp_path, 2)
    d.log.write_bytes(d.log.read_bytes().rstrip(b"\n"))
    report = _verify(template, d, tmp_path / "mem")
    assert report.ok and report.entries == 2 and [w.kind for w in report.warnings] == [K.MISSING_NEWLINE]
    _add(template, d, "next")
    assert [e.run_id for e in d.entries()] == ["run-1", "run-2", "next"]
    assert _verify(template, d, tmp_path / "mem").ok


def test_torn_line_is_kept_aside(template: Template, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = _dossier(template, tmp_path, 2)
    torn = b'{"schema_version":1,"seq":3,"pr'
    with open(d.log, "ab") as fh:
        fh.write(torn)
    report = _verify(template, d, tmp_path / "mem")
    assert report.kinds() == {K.TORN_TAIL} and report.entries == 2
    with caplog.at_level(logging.WARNING):
        _add(template, d, "next")
    kept = list(d.root.glob("log.jsonl.torn-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == torn
    assert any("moved out of the log" in r.getMessage() for r in caplog.records)
    assert [e.seq for e in d.entries()] == [1, 2, 3] and _verify(template, d, tmp_path / "mem").ok


def test_no_checkpoint_is_a_distinct_problem_and_signing_one_migrates(template: Template, tmp_path: Path) -> None:
    d = _dossier(template, tmp_path, 2)
    (d.root / CHECKPOINT_NAME).unlink()
    before = d.log.read_bytes()
    report = _verify(template, d, tmp_path / "mem")
    assert report.kinds() == {K.NO_CHECKPOINT} and "--sign" in (report.problems[0].hint or "")
    d.sign_checkpoint(template.signer)
    assert d.log.read_bytes() == before and _verify(template, d, tmp_path / "mem").ok


def test_crash_between_append_and_checkpoint(template: Template, tmp_path: Path) -> None:
    d = _dossier(template, tmp_path, 2)
    record, bundle, out = _signed_run(template, d, "unsigned-tail")
    d.add_run(record, bundle, out)  # as if killed after the line was written, before the checkpoint
    report = _verify(template, d, tmp_path / "mem")
    assert report.kinds() == {K.CHECKPOINT_STALE} and "covers 2 of 3" in report.problems[0].what
    _add(template, d, "next")  # the next append signs over the whole log
    assert _verify(template, d, tmp_path / "mem").ok


def test_appending_refuses_to_sign_over_a_rewritten_log(template: Template, tmp_path: Path) -> None:
    d = _dossier(template, tmp_path)
    lines = _lines(d)
    _rechain(d, [lines[0], lines[2]])
    from harness.errors import CheckpointError, CheckpointFailure

    with pytest.raises(CheckpointError) as err:
        d.sign_checkpoint(template.signer)
    assert err.value.reason is CheckpointFailure.INCONSISTENT


def test_untrusted_or_altered_checkpoint(template: Template, tmp_path: Path) -> None:
    d = _dossier(template, tmp_path, 2)
    (d.root / CHECKPOINT_NAME).unlink()
    d.sign_checkpoint(KeySigner(tmp_path / "stranger"))
    assert _verify(template, d, tmp_path / "mem").kinds() == {K.CHECKPOINT_INVALID}
    d2 = _dossier(template, tmp_path / "2", 2)
    cp_path = d2.root / CHECKPOINT_NAME
    text = cp_path.read_text()
    cp_path.write_text(text.replace("\n2\n", "\n1\n", 1))  # the size edited: no longer the log's tree head
    assert _verify(template, d2, tmp_path / "mem").kinds() == {K.CHECKPOINT_MISMATCH}
    one = parse_checkpoint(text.encode())
    lines = _lines(d2)
    from harness._internal import merkle

    forged = type(one)(type(one.head)(one.head.origin, 1, merkle.root_of([merkle.leaf_hash(lines[0])])),
                       one.signatures)  # a true tree head of entry 1, under the signature of size 2
    cp_path.write_bytes(forged.to_bytes())
    assert _verify(template, d2, tmp_path / "mem").kinds() == {K.CHECKPOINT_STALE, K.CHECKPOINT_INVALID}
    cp_path.write_text("not a checkpoint\n")
    assert K.CHECKPOINT_INVALID in _verify(template, d2, tmp_path / "mem").kinds()


class _BundleSigner:
    """Any signer but the local key (Sigstore keyless in real use) signs a statement over the note."""

    def __init__(self, cfg: Path) -> None:
        self.cfg = cfg

    def sign(self, subjects: dict[str, str], predicate_type: str, predicate: dict[str, object]) -> Signed:
        return Signed(sign.sign_statement(subjects, predicate_type, predicate, sign.load_or_create_key(self.cfg)))


def test_a_bundle_signed_checkpoint(template: Template, tmp_path: Path) -> None:
    d = _dossier(template, tmp_path, 2)
    d.sign_checkpoint(_BundleSigner(template.cfg))
    cp = parse_checkpoint((d.root / CHECKPOINT_NAME).read_bytes())
    assert not cp.signatures and (d.root / CHECKPOINT_BUNDLE_NAME).is_file()
    report = _verify(template, d, tmp_path / "mem")
    assert report.ok and report.checkpoint is not None and report.checkpoint.signer.startswith("key:")
    _add(template, d, "next")  # a key-signed checkpoint replaces the bundle
    assert not (d.root / CHECKPOINT_BUNDLE_NAME).exists() and _verify(template, d, tmp_path / "mem").ok


def test_commit_binds_the_record_to_the_entry_it_follows(template: Template, tmp_path: Path) -> None:
    """A record signed before another run was appended is amended and signed again at commit."""
    d = _dossier(template, tmp_path, 2)
    record, bundle, out = _signed_run(template, d, "late", previous=None)  # saw an empty log
    work = WorkDir(d.root / ".work", "k" * 64)
    work.path.mkdir(parents=True)
    shutil.copyfile(out, work.path / OUTPUTS_NAME)
    entry, committed = commit_run(work, d, record, bundle, template.signer)
    assert committed.previous_entry == sha256_bytes(_lines(d)[1]) and entry.seq == 3
    assert parse_record(d.run_dir("late") / "record.json") == committed
    report = _verify(template, d, tmp_path / "mem")
    assert report.ok and not report.warnings


def test_the_rekor_ecdsa_note_vector() -> None:
    """Signature type 0x02 as transparency-dev's verifier and Rekor define it: key ID = SHA-256(DER SPKI)[:4],
    ECDSA over SHA-256 of the note text (vector from transparency-dev/formats note_verifier_test.go)."""
    material = base64.b64decode("AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNhtmPtrWm3U1eQXBogSMdGvXwBcK5AW5i0hrZLOC96l+s"
                                "mGNM7nwZ4QvFK/4sueRoVj//QP22Ni4Qt9DPfkWLc=")
    assert material[0] == 0x02
    key = serialization.load_der_public_key(material[1:])
    assert isinstance(key, ec.EllipticCurvePublicKey)
    note = ("Rekor\n798034\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n\n\u2014 rekor.sigstore.dev "
            "wNI9ajBEAiARInWIWyCdyG27CO6LPnPekyw20qO0YJfoaPaowGp/XgIgc+qEHS3+GKVClgqq20uDLet7MCoTURUCRdxwWBHHufk=\n")
    cp = parse_checkpoint(note.encode())
    assert (cp.head.origin, cp.head.size) == ("Rekor", 798034)
    s = cp.signatures[0]
    assert s.name == "rekor.sigstore.dev" and s.key_id.hex() == "c0d23d6a" == ecdsa_key_id(key).hex()
    key.verify(s.signature, cp.head.body(), ec.ECDSA(hashes.SHA256()))
    assert verifier_key("rekor.sigstore.dev", key) == "rekor.sigstore.dev+c0d23d6a+" + base64.b64encode(material).decode()
    assert hashlib.sha256(material[1:]).digest()[:4] == s.key_id


Op = Callable[[list[bytes]], list[bytes]]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_rewrite_with_a_resigned_checkpoint_fails_against_memory(template: Template, tmp_path_factory: pytest.TempPathFactory,
                                                                     data: st.DataObject) -> None:
    """Delete, swap, duplicate or truncate anywhere, recompute the chain, sign a new checkpoint with the
    trusted key: a verifier that saw the honest log refuses the result."""
    base = tmp_path_factory.mktemp("h")
    honest = _cached_honest(template, tmp_path_factory)
    shutil.copytree(honest, base / "mini-safety")
    d = Dossier(base / "mini-safety")
    mem = base / "mem"
    assert _verify(template, d, mem).ok
    lines = _lines(d)
    n = len(lines)
    op = data.draw(st.sampled_from(["delete", "swap", "duplicate", "truncate"]))
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, n - 1).filter(lambda x: x != i))
    new = list(lines)
    if op == "delete":
        del new[i]
    elif op == "swap":
        new[i], new[j] = new[j], new[i]
    elif op == "duplicate":
        new.insert(j, lines[i])
    else:
        new = lines[:max(i, 1)]
    _rechain(d, new)
    _resign(template, d)
    assert not _verify(template, d, mem).ok, op


_HONEST: dict[str, Path] = {}


def _cached_honest(t: Template, factory: pytest.TempPathFactory) -> Path:
    if "d" not in _HONEST:
        _HONEST["d"] = _dossier(t, factory.mktemp("honest"), 4).root
    return _HONEST["d"]


def test_sigkill_between_the_entry_and_its_checkpoint(pkg_dir: Path, tmp_path: Path) -> None:
    """A real `harness run` killed right after its entry reached the log, before the checkpoint:
    the run is committed, verify says the checkpoint is one entry behind, and signing repairs it."""
    import os
    import subprocess
    import sys

    dossiers = tmp_path / "dossiers"
    with FakeOpenAI() as srv:
        base = [sys.executable, "-m", "harness", "run", str(pkg_dir), "--endpoint", srv.url, "--model", "fake-model",
                "--limit", "3", "--no-progress", "--json", "--dossiers", str(dossiers)]
        assert subprocess.run(base, capture_output=True, timeout=120).returncode == 0
        killed = subprocess.run([*base, "--seed", "9"], capture_output=True, timeout=120,
                                env={**os.environ, "HARNESS_CRASH_AT": "entry-appended"})
        assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    d = Dossier(dossiers / "mini-safety")
    assert len(d.entries()) == 2
    report = verify_dossier(d)
    assert report.kinds() == {K.CHECKPOINT_STALE}, report.problems
    assert main(["dossier", "checkpoint", "mini-safety", "--sign", "--dossiers", str(dossiers)]) == 0
    assert verify_dossier(d).ok
