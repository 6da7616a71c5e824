"""Interrupted runs lose nothing: the journal, resuming, and SIGKILL at many points.

The in-process tests use a scripted backend to interrupt at exact samples; the
subprocess test kills a real `harness run` against a loopback OpenAI-compatible
server with SIGKILL, at named crash points (harness/_crashpoint.py) chosen at random
with a recorded seed and at random instants, and resumes after each kill.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends.base import Backend, GenerationRequest, GenerationResult, ModelIdentity
from harness.dossier.log import Dossier
from harness.dossier.verify import verify_dossier
from harness.errors import JournalError, RunInterruptedError
from harness.journal import read_journal
from harness.plan import RunPlan
from harness.record import read_outputs
from harness.run import ResumeMode, RunResult, execute
from harness.scoring.factory import make_scorer
from harness.signing.keys import default_trust_store

from .conftest import REPO
from .fake_openai import FakeOpenAI


class Interrupting(Backend):
    """Answers by rule and raises ``exc`` when asked for its ``stop_at``-th answer."""

    def __init__(self, stop_at: int | None = None, exc: BaseException | None = None, fail: set[str] = frozenset()) -> None:
        self.stop_at, self.exc, self.fail = stop_at, exc, fail
        self.identity = ModelIdentity(backend="scripted", name="scripted", path=None, revision=None,
                                      files={"w": "0" * 64}, digest="1" * 64)
        self.seen: list[str] = []

    def generate(self, req: GenerationRequest) -> GenerationResult:
        if self.stop_at is not None and len(self.seen) + 1 == self.stop_at:
            raise self.exc or RuntimeError("killed")
        self.seen.append(req.sample_id)
        if req.sample_id in self.fail:
            return GenerationResult(text="", finish_reason="error", completion_tokens=0, latency_s=0.0,
                                    error="server returned 500", attempts=3)
        text = "I'm sorry, but I can't help with that." if "refuse" in req.sample_id else "Sure, here is how."
        return GenerationResult(text=text, finish_reason="stop", completion_tokens=5, latency_s=0.001)

    def close(self) -> None:
        pass


def _run(pkg: Path, dossiers: Path, backend: Backend, *, seed: int | None = None, purpose: str = "run",
         resume: ResumeMode = "auto") -> RunResult:
    """A run with the test's own backend passed in (what ``harness run`` does with a loaded one)."""
    plan = RunPlan.from_package(pkg, seed=seed, purpose=purpose)
    scorer = make_scorer(plan.package.manifest.scorer, plan.package.root)
    return execute(plan, backend, scorer, dossiers_dir=dossiers, resume=resume)


def test_resume_generates_only_what_is_missing(pkg_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _run(pkg_dir, tmp_path / "ref", Interrupting())
    d = tmp_path / "d"
    first = Interrupting(stop_at=50)
    with pytest.raises(RuntimeError):
        _run(pkg_dir, d, first)
    assert len(first.seen) == 49 and not (d / "mini-safety" / "log.jsonl").exists()
    second = Interrupting()
    res = _run(pkg_dir, d, second)
    assert len(second.seen) == 120 - 49 and not set(first.seen) & set(second.seen)
    assert res.record.outputs.content_sha256 == whole.record.outputs.content_sha256
    assert res.record.resumes and res.record.resumes[0].samples_done == 49
    assert any("resuming run" in n for n in res.notices)
    ids = [x["id"] for x in read_outputs(res.run_dir / "outputs.jsonl")]
    assert len(ids) == len(set(ids)) == 120
    assert verify_dossier(Dossier.for_package("mini-safety", d), default_trust_store()).ok
    assert not [p for p in (d / "mini-safety" / ".work").iterdir()]  # nothing left behind


def test_ctrl_c_keeps_the_journal_and_says_how_to_resume(pkg_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "d"
    with pytest.raises(RunInterruptedError) as e:
        _run(pkg_dir, d, Interrupting(stop_at=31, exc=KeyboardInterrupt()))
    assert "30 of 120 samples are saved" in e.value.message and "resume" in (e.value.hint or "")
    assert e.value.exit_code == 130
    res = _run(pkg_dir, d, Interrupting(), resume="require")
    assert res.record.outputs.samples == 120 and res.entry.seq == 1


def test_failed_samples_are_retried_on_resume(pkg_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "d"
    with pytest.raises(RuntimeError):
        _run(pkg_dir, d, Interrupting(stop_at=100, fail={"en-refuse-01", "fr-comply-03"}))
    again = Interrupting()
    res = _run(pkg_dir, d, again)
    assert res.record.status == "complete" and res.record.outputs.errors == 0
    assert {"en-refuse-01", "fr-comply-03"} <= set(again.seen)


def test_resume_flags(pkg_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "d"
    with pytest.raises(JournalError, match="no unfinished run"):
        _run(pkg_dir, d, Interrupting(), resume="require")
    with pytest.raises(RuntimeError):
        _run(pkg_dir, d, Interrupting(stop_at=10))
    fresh = Interrupting()
    res = _run(pkg_dir, d, fresh, resume="fresh")
    assert len(fresh.seen) == 120 and not res.record.resumes
    # Another configuration (seed) never picks up this journal.
    with pytest.raises(RuntimeError):
        _run(pkg_dir, d, Interrupting(stop_at=10))
    other = Interrupting()
    _run(pkg_dir, d, other, seed=99)
    assert len(other.seen) == 120


def test_torn_journal_tail_is_dropped_and_regenerated(pkg_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "d"
    with pytest.raises(RuntimeError):
        _run(pkg_dir, d, Interrupting(stop_at=21))
    (work,) = [p for p in (d / "mini-safety" / ".work").iterdir() if p.is_dir()]
    journal = work / "outputs.jsonl"
    with open(journal, "ab") as fh:
        fh.write(b'{"id": "en-comply-0')  # what a power cut mid-write could leave
    assert len(read_journal(journal)) == 20 and journal.read_bytes().endswith(b"\n")
    again = Interrupting()
    res = _run(pkg_dir, d, again)
    assert len(again.seen) == 100 and res.record.outputs.samples == 120


def test_same_configuration_cannot_run_twice_at_once(pkg_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "d"
    inner: list[BaseException] = []

    class Reentrant(Interrupting):
        def generate(self, req: GenerationRequest) -> GenerationResult:
            if not inner:
                try:
                    _run(pkg_dir, d, Interrupting())
                except JournalError as e:
                    inner.append(e)
            return super().generate(req)

    _run(pkg_dir, d, Reentrant())
    assert inner and "in progress" in str(inner[0])


# ---------------------------------------------------------------- SIGKILL, in a real process

KILL_SEED = 20261123
"""Seed of the random choice of kill points; printed by the test so a failure can be replayed."""
COMMIT_POINTS = ("before-sign", "signed", "record-written", "bundle-written", "commit-marked", "moved", "appended")


def _kill_plan(rng: random.Random) -> list[str]:
    """At least 20 crash points, each of which a run still has ahead of it when it starts.

    Generation comes first: kills after a random number of new journal lines (at most
    6, so 120 samples never run out). Then every commit-phase point in random order,
    each of which rolls the commit back so the next attempt reaches the commit again;
    "appended" is last, since after it the run is committed and nothing is left to kill.
    """
    plan = [f"journal-line#{rng.randint(1, 6)}" for _ in range(rng.randint(14, 16))]
    commit = [p for p in COMMIT_POINTS if p != "appended"]
    rng.shuffle(commit)
    return plan + commit + ["appended"]


def _harness(args: list[str], env: dict[str, str], crash_at: str | None = None, timeout: float = 120) -> subprocess.Popen[bytes]:
    e = dict(env)
    e.pop("HARNESS_CRASH_AT", None)
    if crash_at:
        e["HARNESS_CRASH_AT"] = crash_at
    return subprocess.Popen([sys.executable, "-m", "harness", *args], env=e, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(workspace: Path, tmp_path: Path) -> None:
    pkg = workspace / "packages" / "mini-safety"
    env = {**os.environ, "HARNESS_DOSSIERS": str(tmp_path / "dossiers"), "PYTHONUNBUFFERED": "1"}
    rng = random.Random(KILL_SEED)
    print(f"kill seed {KILL_SEED}")
    with FakeOpenAI() as srv:
        base = ["run", str(pkg), "--endpoint", srv.url, "--model", "fake-model", "--concurrency", "4",
                "--no-progress", "--json"]
        t_ref = time.monotonic()
        ref = _harness([*base, "--dossiers", str(tmp_path / "ref")], env)
        out, err = ref.communicate(timeout=120)
        t_ref = time.monotonic() - t_ref
        assert ref.returncode == 0, err.decode()
        want = json.loads(out)["outputs"]["content_sha256"]

        kills = 0
        plan = _kill_plan(rng)
        for point in plan:
            p = _harness(base, env, crash_at=point)
            p.communicate(timeout=120)
            assert p.returncode == -signal.SIGKILL, f"{point} was not reached"
            kills += 1
        # Kills at arbitrary instants, from outside, on fresh runs of another seed.
        # The instants are fractions of how long a whole run took here, so they land
        # mid-run whatever the machine's speed; a run that still finished first is counted.
        timer_kills = 0
        log = Dossier.for_package("mini-safety", tmp_path / "dossiers")
        pending: str | None = None  # the run id of an interrupted seed-5 run, which must be resumed

        def committed_since(before: int) -> list[str]:
            new = [e.run_id for e in log.entries()[before:]]
            assert len(new) <= 1, f"one process committed {len(new)} runs"
            return new

        for _ in range(4):
            before = len(log.entries())
            p = _harness([*base, "--seed", "5"], env)
            time.sleep(rng.uniform(0.2, 0.9) * t_ref)
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                timer_kills += 1
            p.communicate(timeout=60)
            new = committed_since(before)
            if new:  # finished (perhaps killed after its commit): an interrupted run is continued, not restarted
                assert pending in (None, new[0]), f"run {pending} was restarted as {new[0]}"
                pending = None
            else:
                states = [json.loads(f.read_bytes())["run_id"] for f in (log.root / ".work").glob("*/run.json")]
                assert len(states) <= 1
                if states:
                    assert pending in (None, states[0]), f"run {pending} was restarted as {states[0]}"
                    pending = states[0]
        final = _harness(base, env)
        out, err = final.communicate(timeout=120)
        assert final.returncode == 0, err.decode()
        got = json.loads(out)
        before = len(log.entries())
        seeded = _harness([*base, "--seed", "5"], env)
        s_out, s_err = seeded.communicate(timeout=120)
        assert seeded.returncode == 0, s_err.decode()
        new = committed_since(before)
        assert pending in (None, *new), f"interrupted run {pending} was not the one committed ({new})"
    print(f"crash-point kills {kills}, timer kills {timer_kills}")
    assert kills >= 20, f"only {kills} kills landed (plan {plan})"
    dossier = Dossier.for_package("mini-safety", tmp_path / "dossiers")
    entries = dossier.entries()
    # Killed runs were resumed, never started twice: one entry for the main configuration,
    # and the seed-5 entries are runs that finished (some before or just after their kill).
    assert len({e.run_id for e in entries}) == len(entries)
    assert sum(1 for e in entries if dossier.record_of(e).seeds.run != 5) == 1
    main = dossier.record_of(dossier.resolve(str(got["dossier_entry"]["seq"])))
    assert main.outputs.content_sha256 == want and main.outputs.samples == 120
    ids = [x["id"] for x in read_outputs(dossier.root / f"runs/{main.run_id}/outputs.jsonl")]
    assert len(ids) == len(set(ids)) == 120
    assert len(main.resumes) >= 1
    report = verify_dossier(dossier, default_trust_store())
    assert report.ok, [str(p) for p in report.problems]
    assert not [p for p in (dossier.root / ".work").iterdir() if not p.name.endswith(".lock")]


@pytest.mark.slow
def test_ctrl_c_in_a_real_process_says_how_to_resume(workspace: Path, tmp_path: Path) -> None:
    pkg = workspace / "packages" / "mini-safety"
    env = {**os.environ, "HARNESS_DOSSIERS": str(tmp_path / "dossiers")}
    with FakeOpenAI() as srv:
        base = ["run", str(pkg), "--endpoint", srv.url, "--model", "fake-model", "--no-progress"]
        p = _harness(base, env, crash_at="journal-line#40:INT")
        _, err = p.communicate(timeout=120)
        assert p.returncode == 130, err.decode()
        assert "samples are saved in the journal" in err.decode() and "run the same command again" in err.decode()
        p = _harness([*base, "--resume", "--json"], env)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        rec = json.loads(out)
        assert rec["outputs"]["samples"] == 120
        assert "resuming run" in err.decode()


def test_a_reproduction_never_continues_an_unfinished_run(pkg_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "d"
    with pytest.raises(RuntimeError):
        _run(pkg_dir, d, Interrupting(stop_at=60))
    rerun = Interrupting()
    _run(pkg_dir, d, rerun, purpose="reproduction")
    assert len(rerun.seen) == 120  # all generated again, none taken from the user's journal
    rest = Interrupting()
    _run(pkg_dir, d, rest)  # the user's own run still resumes
    assert len(rest.seen) == 120 - 59
