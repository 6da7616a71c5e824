"""Received state is untrusted (issue 14): planted journals and commit markers, symlinks
and FIFOs where dossier files should be, JSON that parses two ways.

Each test plays the party who hands the auditor a dossier: it plants something, runs
what the auditor would run, and checks that the planted thing was not used, that
nothing outside the dossier moved, and that the planted data is still there (kept
aside, never deleted). Anything that could block (a FIFO) runs under an alarm, so a
regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness._internal.files import (
    NotRegularFileError,
    UnsafeNameError,
    check_name,
    confine,
    read_regular,
)
from harness._internal.strictjson import StrictJSONError, loads_strict
from harness.backends.base import Backend, GenerationRequest, GenerationResult, ModelIdentity
from harness.dossier.log import Dossier
from harness.dossier.runs import verify_record
from harness.dossier.verify import verify_dossier
from harness.errors import DossierError, HarnessError, JournalError, RecordError
from harness.journal import UNTRUSTED_PREFIX
from harness.plan import RunPlan
from harness.record import OUTPUTS_NAME, RECORD_NAME, parse_record
from harness.run import ResumeMode, RunResult, execute
from harness.scoring.factory import make_scorer
from harness.signing.keys import default_trust_store

PLANTED = "PLANTED ANSWER nobody here generated"


class Scripted(Backend):
    """Refuses harmful prompts, answers the rest; raises at its ``stop_at``-th answer."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at = stop_at
        self.identity = ModelIdentity(backend="scripted", name="scripted", path=None, revision=None,
                                      files={"w": "0" * 64}, digest="1" * 64)
        self.seen: list[str] = []

    def generate(self, req: GenerationRequest) -> GenerationResult:
        if self.stop_at is not None and len(self.seen) + 1 == self.stop_at:
            raise RuntimeError("killed")
        self.seen.append(req.sample_id)
        text = "I'm sorry, but I can't help with that." if "refuse" in req.sample_id else "Sure, here is how."
        return GenerationResult(text=text, finish_reason="stop", completion_tokens=5, latency_s=0.001)

    def close(self) -> None:
        pass


def _run(pkg: Path, dossiers: Path, backend: Backend, *, purpose: str = "run", resume: ResumeMode = "auto") -> RunResult:
    plan = RunPlan.from_package(pkg, purpose=purpose)
    scorer = make_scorer(plan.package.manifest.scorer, plan.package.root)
    return execute(plan, backend, scorer, dossiers_dir=dossiers, resume=resume)


def _interrupted(pkg: Path, dossiers: Path, purpose: str = "run") -> Path:
    """An unfinished run of 49 samples; its work folder."""
    with pytest.raises(RuntimeError):
        _run(pkg, dossiers, Scripted(stop_at=50), purpose=purpose)
    (work,) = [p for p in (dossiers / "mini-safety" / ".work").iterdir() if p.is_dir()]
    return work


def _untrusted(dossiers: Path) -> list[Path]:
    return sorted((dossiers / "mini-safety" / ".work").glob(f"{UNTRUSTED_PREFIX}*"))


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail (not hang) if the body blocks, e.g. on opening a FIFO."""
    def boom(signum: int, frame: object) -> None:
        raise TimeoutError(f"blocked for {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------ planted journals


@pytest.mark.parametrize("purpose", ["run", "reproduction"])
def test_a_journal_written_elsewhere_is_not_resumed(pkg_dir: Path, tmp_path: Path, purpose: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The work folder was written under another machine's key (another config folder): it is
    set aside whole, the run generates every sample itself, and no planted answer is used."""
    d = tmp_path / "d"
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path / "other-machine"))
    work = _interrupted(pkg_dir, d, purpose)
    journal = work / OUTPUTS_NAME
    planted = [json.loads(x) for x in journal.read_bytes().splitlines()]
    journal.write_bytes(b"".join(json.dumps({**x, "response": PLANTED}).encode() + b"\n" for x in planted))
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path / "auditor"))
    backend = Scripted()
    res = _run(pkg_dir, d, backend, purpose=purpose)
    assert len(backend.seen) == 120 and not res.record.resumes  # nothing was taken from the planted journal
    assert PLANTED.encode() not in (res.run_dir / OUTPUTS_NAME).read_bytes()
    assert any("not written by this machine" in n for n in res.notices)
    (kept,) = _untrusted(d)
    assert PLANTED.encode() in (kept / work.name / OUTPUTS_NAME).read_bytes()  # kept aside, not deleted


def test_planted_lines_in_our_own_journal_are_dropped_and_kept(pkg_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "d"
    work = _interrupted(pkg_dir, d)
    first = json.loads(work.joinpath(OUTPUTS_NAME).read_bytes().splitlines()[0])
    fake = {**first, "id": "es-refuse-99", "response": PLANTED}
    with open(work / OUTPUTS_NAME, "ab") as fh:  # a line without this machine's MAC
        fh.write(json.dumps(fake).encode() + b"\n")
    res = _run(pkg_dir, d, Scripted())
    assert res.record.resumes[0].samples_done == 49
    assert PLANTED.encode() not in (res.run_dir / OUTPUTS_NAME).read_bytes()
    assert any("were not written by this machine" in n for n in res.notices)
    (kept,) = _untrusted(d)
    assert PLANTED.encode() in (kept / OUTPUTS_NAME).read_bytes()


def test_resume_insists_on_our_own_journal(pkg_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "d"
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path / "other-machine"))
    _interrupted(pkg_dir, d)
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path / "auditor"))
    with pytest.raises(JournalError, match="no unfinished run") as err:
        _run(pkg_dir, d, Scripted(), resume="require")
    assert "not written by this machine" in err.value.message
    assert len(_untrusted(d)) == 1


def test_a_work_folder_that_is_a_symlink_is_set_aside(pkg_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "d"
    work = _interrupted(pkg_dir, d)
    outside = tmp_path / "outside"
    shutil.move(str(work), outside)
    work.symlink_to(outside)
    res = _run(pkg_dir, d, Scripted())
    assert not res.record.resumes and outside.is_dir() and (outside / OUTPUTS_NAME).is_file()


# ------------------------------------------------------------------ planted commit markers


@pytest.mark.parametrize("run_id", ["../../x", "..", "a/b", "x\x00y", " "])
def test_a_marker_naming_a_path_moves_and_deletes_nothing(pkg_dir: Path, tmp_path: Path, run_id: str) -> None:
    d = tmp_path / "dossiers"
    work = _interrupted(pkg_dir, d)
    shutil.rmtree(work)  # what the old code needed: no work folder, so it "rolls back" runs/<id>
    victim = d / "x"  # dossiers/mini-safety/runs/../../x
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me", encoding="utf-8")
    marker = work.parent / f"{work.name}.commit"
    marker.write_bytes(run_id.encode())
    res = _run(pkg_dir, d, Scripted())
    assert (victim / "precious.txt").read_text(encoding="utf-8") == "keep me"  # not moved, not deleted
    assert res.record.outputs.samples == 120 and not marker.exists()
    (kept,) = _untrusted(d)
    assert (kept / marker.name).read_bytes() == run_id.encode()  # the marker itself is kept aside
    assert any("commit marker" in n for n in res.notices)


def test_a_marker_naming_a_received_run_is_not_honoured(pkg_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A received dossier whose run folder holds a state written elsewhere: the marker does not
    make this run 'already finished' (which would skip it), and the folder stays where it is."""
    d = tmp_path / "d"
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path / "vendor"))
    done = _run(pkg_dir, d, Scripted())
    work = _interrupted(pkg_dir, d)
    shutil.rmtree(work)
    (work.parent / f"{work.name}.commit").write_text(done.record.run_id, encoding="utf-8")
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path / "auditor"))
    backend = Scripted()
    res = _run(pkg_dir, d, backend)
    assert res.record.run_id != done.record.run_id and len(backend.seen) == 120
    assert (done.run_dir / RECORD_NAME).is_file()


# ------------------------------------------------------------------ symlinks and FIFOs in a dossier


@pytest.fixture
def dossier(pkg_dir: Path, tmp_path: Path) -> Dossier:
    _run(pkg_dir, tmp_path / "d", Scripted())
    return Dossier(tmp_path / "d" / "mini-safety")


def test_an_entry_file_symlinked_outside_is_refused(dossier: Dossier, tmp_path: Path) -> None:
    (entry,) = dossier.runs()
    record = dossier.root / entry.record.path
    outside = tmp_path / "elsewhere.json"
    shutil.copy(record, outside)  # the same bytes, so only the link gives it away
    record.unlink()
    record.symlink_to(outside)
    trusted = default_trust_store()
    for report in (verify_dossier(dossier, trusted), verify_dossier(dossier, [], chain_only=True)):
        assert not report.ok and any("outside the dossier" in p.what for p in report.problems)
    with pytest.raises(DossierError, match="outside the dossier"):
        dossier.record_of(entry)
    with pytest.raises(DossierError, match="outside the dossier"):
        verify_record(f"mini-safety@{entry.seq}", trusted, dossiers_dir=dossier.root.parent)


@pytest.mark.parametrize("which", ["record", "outputs", "bundle", "log"])
def test_a_fifo_where_a_file_should_be_is_refused_at_once(dossier: Dossier, which: str) -> None:
    (entry,) = dossier.runs()
    target = dossier.log if which == "log" else dossier.root / getattr(entry, which).path
    target.unlink()
    os.mkfifo(target)
    with _deadline(20):
        chain = verify_dossier(dossier, [], chain_only=True)
        full = verify_dossier(dossier, default_trust_store())
        assert not chain.ok and not full.ok
        assert any("FIFO" in p.what for p in chain.problems + full.problems)
        if which != "log":
            with pytest.raises(HarnessError, match="FIFO"):
                verify_record(f"mini-safety@{entry.seq}", default_trust_store(), dossiers_dir=dossier.root.parent)
        else:
            with pytest.raises(DossierError, match="FIFO"):
                dossier.entries()
        if which == "record":
            with pytest.raises(RecordError, match="FIFO"):
                parse_record(target)


def test_read_regular_refuses_devices_and_sockets(tmp_path: Path) -> None:
    import socket

    with _deadline(10):
        with pytest.raises(NotRegularFileError, match="character device"):
            read_regular("/dev/zero")
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.bind(str(tmp_path / "s"))
            with pytest.raises(OSError):  # a socket cannot even be opened; never blocks
                read_regular(tmp_path / "s")
        finally:
            sock.close()
        (tmp_path / "link").symlink_to(tmp_path / "s")
        with pytest.raises(NotRegularFileError, match="symbolic link"):
            read_regular(tmp_path / "link", follow=False)


def test_confine_follows_links_before_deciding(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "runs").mkdir(parents=True)
    (root / "runs" / "in").write_text("x", encoding="utf-8")
    (root / "runs" / "inside-link").symlink_to(root / "runs" / "in")
    (root / "runs" / "out-link").symlink_to(tmp_path)
    assert confine(root, "runs/inside-link") == (root / "runs" / "in").resolve()
    with pytest.raises(ValueError, match="outside"):
        confine(root, "runs/out-link/anything")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=0, max_size=200))
def test_check_name_accepts_only_plain_names(value: str) -> None:
    try:
        name = check_name(value)
    except UnsafeNameError:
        return
    assert name == value and "/" not in name and "\\" not in name and "\x00" not in name
    assert name not in ("", ".", "..") and len(name) <= 128 and name.isprintable()


# ------------------------------------------------------------------ JSON that parses two ways


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', '{"x": {"b": 1, "b": 1}}', '[{"k": 0, "k": 0}]',
                                  '{"v": NaN}', '{"v": Infinity}', '[-Infinity]'])
def test_strict_json_refuses_duplicates_and_non_numbers(text: str) -> None:
    with pytest.raises(StrictJSONError):
        loads_strict(text)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                    max_leaves=20))
def test_strict_json_reads_what_json_writes(value: object) -> None:
    assert loads_strict(json.dumps(value)) == value


def test_a_record_with_a_duplicate_key_is_refused(dossier: Dossier) -> None:
    (entry,) = dossier.runs()
    path = dossier.root / entry.record.path
    path.write_bytes(b'{"status":"incomplete",' + path.read_bytes()[1:])
    with pytest.raises(RecordError, match="duplicate"):
        parse_record(path)
