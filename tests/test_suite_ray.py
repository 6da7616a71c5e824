"""Suites on Ray (``harness suite run --executor ray``, docs/scale-out.md).

A local Ray instance (2 CPUs, started and stopped by the command itself) runs a 2 x 2
suite (mini-safety and XSTest on the embedded model and a fake OpenAI server) while one
pair's worker is killed mid-run; the suite must finish with every sample answered once,
the same outputs content digests as the local executor, a suite record that verifies,
and nothing written by a worker. Also: the error without Ray, which needs no Ray.

The Ray tests are skipped where Ray is not installed (the default `make test`); the nox
session `ray` installs the extra and sets HARNESS_REQUIRE_RAY, which makes a missing Ray
a failure instead of a skip.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.dossier.log import Dossier
from harness.record import RunRecord, parse_output_line, parse_record
from harness.suite.ray_executor import crash_point_of, gpus_of
from harness.suite.record import SUITE_RECORD_NAME, parse_suite_record

from . import test_suite
from .fake_openai import FakeOpenAI
from .test_suite import MIRROR, _suite, needs_mirror

REQUIRED = bool(os.environ.get("HARNESS_REQUIRE_RAY"))

# the suite tests' workspace (XSTest beside mini-safety, as the current folder) and fake server
ws, fake = test_suite.ws, test_suite.fake


def _ray() -> Any:
    """Ray, or a skip (a failure when HARNESS_REQUIRE_RAY is set, as in `nox -s ray`)."""
    if REQUIRED:
        import ray  # an ImportError here fails the test: the session promised Ray

        return ray
    return pytest.importorskip("ray", reason="Ray is not installed (`uv sync --extra ray`; `nox -s ray` runs these)")


def _records(dossiers: Path) -> dict[tuple[str, str], RunRecord]:
    """Each run the suite record lists, by (package, model name as the suite gave it)."""
    record = parse_suite_record(next((dossiers / "_suites" / "release").glob(f"*/{SUITE_RECORD_NAME}")))
    out = {}
    for r in record.runs:
        d = Dossier.for_package(r.dossier, dossiers)
        entry = next(e for e in d.runs() if e.seq == r.seq)
        out[(r.package, r.model)] = parse_record(d.root / entry.record.path)
    return out


def _digests(dossiers: Path) -> dict[tuple[str, str], str]:
    """Each listed run's outputs content digest."""
    return {pair: r.outputs.content_sha256 for pair, r in _records(dossiers).items()}


def _answered(dossiers: Path, package: str) -> list[Counter[str]]:
    """For each run of ``package``: how often each sample id appears in its outputs file."""
    d = Dossier.for_package(package, dossiers)
    counts = []
    for e in d.runs():
        path = d.root / e.outputs.path
        ids = Counter(line["id"] for n, raw in enumerate(path.read_bytes().splitlines(), 1)
                      if (line := parse_output_line(path, n, raw)) is not None)
        counts.append(ids)
    return counts


@pytest.mark.slow
@needs_mirror
def test_a_suite_on_ray_survives_a_killed_worker_and_matches_the_local_executor(
        ws: Path, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The same 2 x 2 suite twice: with the local executor, then on a local Ray instance
    (2 CPUs, 2 jobs) with the worker of XSTest x fake killed (SIGKILL) at its fourth answer,
    in its first process only. Ray restarts the worker and the driver asks it for exactly
    the samples it had not received; the run records are the same answers as the local
    ones (outputs content digests), each sample is answered once, the suite record says
    Ray ran it and verifies, and workers (which inherit HARNESS_DOSSIERS pointing at an
    empty trap folder, while only the driver is told the real one) wrote nothing."""
    _ray()
    suite = _suite(ws / "suite.toml", fake.url, criteria='[[gate.criteria]]\nmetric = "refusal_rate"\nmin = 0.0\n')
    local, remote, trap = ws / "local", ws / "remote", ws / "trap"

    assert main(["suite", "run", str(suite), "--mirror", str(MIRROR), "--dossiers", str(local), "--quiet"]) == 0
    capsys.readouterr()
    expected = _digests(local)
    assert len(expected) == 4
    asked_locally = len(fake.requests)
    assert asked_locally == 22  # 12 mini-safety + 10 XSTest samples

    monkeypatch.setenv("HARNESS_DOSSIERS", str(trap))
    monkeypatch.setenv("HARNESS_CRASH_AT", crash_point_of("xstest", "fake") + "#4")
    code = main(["suite", "run", str(suite), "--mirror", str(MIRROR), "--dossiers", str(remote),
                 "--executor", "ray", "--jobs", "2"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "retry  xstest x fake: its Ray worker died" in err  # the kill happened, and was recovered from
    monkeypatch.delenv("HARNESS_CRASH_AT")

    assert _digests(remote) == expected  # the same answers as the local executor, pair by pair
    local_runs, remote_runs = _records(local), _records(remote)
    for pair, run in remote_runs.items():  # the same model identity; the accelerator is the worker's
        assert run.model == local_runs[pair].model
        assert run.platform.model_dump().get("accelerator") == local_runs[pair].platform.model_dump().get("accelerator")
    for package, n in (("mini-safety", 12), ("xstest", 10)):
        runs = _answered(remote, package)
        assert len(runs) == 2  # one run per model, nothing committed twice
        for ids in runs:
            assert len(ids) == n and set(ids.values()) == {1}  # every sample answered exactly once
    # the killed worker's unreported answers were asked for again, nothing else was
    assert len(fake.requests) - asked_locally > 22

    record_path = next((remote / "_suites" / "release").glob(f"*/{SUITE_RECORD_NAME}"))
    record = parse_suite_record(record_path)
    assert record.executor is not None and record.executor.kind == "ray" and record.executor.ray_version
    local_record = parse_suite_record(next((local / "_suites" / "release").glob(f"*/{SUITE_RECORD_NAME}")))
    assert local_record.executor is not None and local_record.executor.kind == "local"
    assert main(["verify", str(record_path), "--dossiers", str(remote), "--json"]) == 0
    ver = json.loads(capsys.readouterr().out)
    assert ver["ok"] and ver["kind"] == "suite" and all(r["verified"] for r in ver["runs"])
    assert not trap.exists()  # no worker wrote a dossier, a journal or a suite record
    assert list((remote / "_suites" / "release").glob(".work/*.json")) == []


# ---------------------------------------------------------------------------- without Ray


def test_without_ray_the_ray_executor_is_a_clear_error_exit_2(ws: Path, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`import ray` fails: exit 2 before anything is planned, run or written, with the extra to install."""
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    suite = _suite(ws / "suite.toml", fake.url, packages='[[packages]]\nname = "mini-safety"\nlimit = 4\n',
                   models=f'[[models]]\nname = "fake"\nendpoint = "{fake.url}"\nmodel = "fake-model"\n')
    assert main(["suite", "run", str(suite), "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert "--executor ray needs Ray" in err and "uv sync --extra ray" in err
    assert fake.requests == [] and not (ws / "dossiers").exists()


def test_a_ray_address_without_the_ray_executor_is_refused(ws: Path, fake: FakeOpenAI,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    suite = _suite(ws / "suite.toml", fake.url, packages='[[packages]]\nname = "mini-safety"\nlimit = 4\n',
                   models=f'[[models]]\nname = "fake"\nendpoint = "{fake.url}"\nmodel = "fake-model"\n')
    assert main(["suite", "run", str(suite), "--ray-address", "127.0.0.1:6379"]) == 2
    assert "--ray-address applies to --executor ray" in capsys.readouterr().err


def test_a_launched_server_asks_ray_for_its_tensor_parallel_gpus() -> None:
    from harness.suite.file import ModelSpec

    assert gpus_of(ModelSpec(name="m")) == 0
    assert gpus_of(ModelSpec(name="m", endpoint="http://127.0.0.1:1/v1", model="x")) == 0
    assert gpus_of(ModelSpec(name="m", serve="vllm")) == 1
    assert gpus_of(ModelSpec(name="m", serve="vllm", engine_args=("--tensor-parallel-size", "4"))) == 4
    assert gpus_of(ModelSpec(name="m", serve="vllm", engine_args=("--tensor-parallel-size=2",))) == 2


def test_an_interrupted_ray_suite_resumes_from_the_drivers_journal_under_either_executor(
        ws: Path, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C in the driver after it journaled four answers from its Ray worker: exit 130,
    the worker stopped. The same suite run again with the local executor continues that
    run from the driver's journal (the journal does not depend on the executor): one record
    whose `resumes` says 4 samples were done, every sample in its outputs once."""
    _ray()
    from harness.suite.ray_executor import ReplayedScorer

    suite = _suite(ws / "suite.toml", fake.url, packages='[[packages]]\nname = "mini-safety"\nlimit = 12\n',
                   models=f'[[models]]\nname = "fake"\nendpoint = "{fake.url}"\nmodel = "fake-model"\n')
    real = ReplayedScorer.hand
    handed = [0]

    def interrupting(self: ReplayedScorer, judgement: Any) -> None:
        if judgement is not None:
            handed[0] += 1
            if handed[0] == 5:  # the driver stops before journaling the fifth answer
                raise KeyboardInterrupt
        real(self, judgement)

    monkeypatch.setattr(ReplayedScorer, "hand", interrupting)
    assert main(["suite", "run", str(suite), "--executor", "ray", "--quiet"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert _answered(ws / "dossiers", "mini-safety") == []  # nothing committed

    monkeypatch.setattr(ReplayedScorer, "hand", real)
    assert main(["suite", "run", str(suite), "--quiet"]) == 0
    (run,) = _records(ws / "dossiers").values()
    assert [r.samples_done for r in run.resumes] == [4]
    (ids,) = _answered(ws / "dossiers", "mini-safety")
    assert len(ids) == 12 and set(ids.values()) == {1}
