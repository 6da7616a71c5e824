"""One run over several OpenAI-compatible replicas: deterministic assignment, identity
check, failover when a replica dies mid-run, and one verifiable record."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from harness.backends.openai import OpenAIBackend
from harness.backends.replicas import ASSIGNMENT_RULE
from harness.cli import main
from harness.dossier.runs import verify_record
from harness.errors import BackendError
from harness.record import parse_record, read_outputs
from harness.run import RunOptions, RunResult, run_package
from harness.signing.keys import default_trust_store
from harness.suite.file import parse_suite_text

from .fake_openai import FakeOpenAI


class DyingServer(FakeOpenAI):
    """A fake server that stops itself (from its own handler) after ``die_after`` chat requests:
    the request that trips it gets its connection dropped, later ones find nothing listening."""

    def __init__(self, die_after: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.die_after = die_after
        self.taken = 0  # chat requests let through, counted where the trip is decided
        self.dead = threading.Event()

    def _handler(self) -> Any:
        base = super()._handler()
        outer = self

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:
                with outer._lock:
                    trip = outer.taken >= outer.die_after or outer.dead.is_set()
                    if trip:
                        outer.dead.set()
                    else:
                        outer.taken += 1
                if trip:
                    if outer.server is not None:
                        threading.Thread(target=outer.stop, daemon=True).start()
                    self._drop()
                    return
                super().do_POST()

        return Handler


class OtherEngine(FakeOpenAI):
    """A fake server that reports another engine version: not a replica of the others."""

    def _handler(self) -> Any:
        base = super()._handler()

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:
                if self.path == "/version":
                    self._send(200, b'{"version": "0.1-other"}')
                else:
                    super().do_GET()

        return Handler


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OpenAIBackend, "backoff_s", 0.01)


def _run(pkg: Path, tmp: Path, endpoint: str | tuple[str, ...], concurrency: int = 2) -> RunResult:
    return run_package(RunOptions(package=pkg, endpoint=endpoint, model="fake-model", concurrency=concurrency,
                                  dossiers_dir=tmp / "d", config_dir=tmp / "cfg", progress=False, resume="fresh"))


def _lines(result: RunResult) -> list[dict[str, Any]]:
    return list(read_outputs(result.run_dir / "outputs.jsonl"))


def test_a_replica_killed_mid_run_fails_over_to_one_complete_record(pkg_dir: Path, tmp_path: Path) -> None:
    with FakeOpenAI() as single:
        alone = _run(pkg_dir, tmp_path, single.url)
    with FakeOpenAI() as a, DyingServer(die_after=10) as b:
        both = _run(pkg_dir, tmp_path, (a.url, b.url))
        assert b.dead.is_set()
    rec = both.record
    lines = _lines(both)
    n = len(lines)
    assert rec.status == "complete" and rec.outputs.errors == 0 and rec.outputs.samples == n
    assert len({x["id"] for x in lines}) == n == len(_lines(alone))  # every sample exactly once
    # the answers do not depend on which replica gave them
    assert rec.outputs.content_sha256 == alone.record.outputs.content_sha256
    assert rec.model == alone.record.model  # one identity: the replicas'
    reps = rec.replicas
    assert reps is not None and reps.endpoints == (a.url, b.url) and reps.rule == ASSIGNMENT_RULE
    assert [f.replica for f in reps.failures] == [1] and reps.failures[0].moved >= 1
    assert "ConnectionError" in reps.failures[0].reason
    by_replica = [sum(1 for x in lines if x["timing"]["replica"] == r) for r in (0, 1)]
    assert list(reps.answered) == by_replica and sum(by_replica) == n
    # b answered at most what it let through before it died (one in flight may be cut off); a the rest
    assert 1 <= by_replica[1] <= 10 and by_replica[0] == n - by_replica[1]
    seeds = {x["id"]: x["seed"] for x in lines}
    stayed = [x for x in lines if seeds[x["id"]] % 2 == 0]
    assert all(x["timing"]["replica"] == 0 for x in stayed)  # a's own samples never moved
    # the record verifies, names no replica index in its digest, and reads back byte for byte
    res = verify_record(both.run_dir / "record.json", default_trust_store(tmp_path / "cfg"))
    assert res.record.replicas == reps
    assert parse_record(both.run_dir / "record.json").to_bytes() == (both.run_dir / "record.json").read_bytes()
    assert "replicas" not in json.loads((alone.run_dir / "record.json").read_text())


def test_assignment_is_deterministic(pkg_dir: Path, tmp_path: Path) -> None:
    with FakeOpenAI() as a, FakeOpenAI() as b:
        first = _run(pkg_dir, tmp_path, (a.url, b.url), concurrency=3)
        asked_a = sorted(r["seed"] for r in a.requests)
        second = _run(pkg_dir, tmp_path, (a.url, b.url), concurrency=1)
        asked_b = sorted(r["seed"] for r in b.requests)
    spread = [{x["id"]: x["timing"]["replica"] for x in _lines(r)} for r in (first, second)]
    assert spread[0] == spread[1]
    assert all(r == x["seed"] % 2 for x in _lines(first) for r in [spread[0][x["id"]]])
    assert asked_a and asked_b and set(spread[0].values()) == {0, 1}
    assert first.record.replicas is not None and not first.record.replicas.failures
    assert first.record.outputs.content_sha256 == second.record.outputs.content_sha256


def test_replicas_that_differ_are_refused(pkg_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeOpenAI() as a, OtherEngine() as b:
        with pytest.raises(BackendError, match=r"replica 1 \(.*\) does not serve what replica 0") as e:
            _run(pkg_dir, tmp_path, (a.url, b.url))
        assert "engine.version" in e.value.message and e.value.exit_code == 2
        code = main(["run", str(pkg_dir), "--endpoint", a.url, "--endpoint", b.url, "--model", "fake-model",
                     "--dossiers", str(tmp_path / "d2"), "--no-progress"])
        assert code == 2 and "replica 1" in capsys.readouterr().err
        assert not a.requests and not b.requests  # refused before any sample was asked


def test_when_every_replica_dies_the_rest_are_errors(pkg_dir: Path, tmp_path: Path) -> None:
    with DyingServer(die_after=3) as a, DyingServer(die_after=4) as b:
        result = _run(pkg_dir, tmp_path, (a.url, b.url))
    lines = _lines(result)
    assert result.record.status == "incomplete" and len({x["id"] for x in lines}) == len(lines)
    answered = [x for x in lines if x["verdict"] != "error"]
    # at most what the two let through (3 + 4; one in flight each may be cut off), the rest errors
    assert 1 <= len(answered) <= 7 and result.record.outputs.errors == len(lines) - len(answered)
    assert sum(result.record.replicas.answered) == len(answered)  # type: ignore[union-attr]
    assert any("no replica left" in (x["error"] or "") for x in lines)
    reps = result.record.replicas
    assert reps is not None and sorted(f.replica for f in reps.failures) == [0, 1]


def test_a_suite_model_may_list_replicas(tmp_path: Path) -> None:
    base = ('schema_version = 1\nname = "s"\n[[packages]]\nname = "mini-safety"\n'
            '[[models]]\nname = "m"\nmodel = "fake-model"\n')
    spec = parse_suite_text(base + 'endpoints = ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]\n',
                            tmp_path / "s.toml").models[0]
    assert spec.all_endpoints == ("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1")
    assert spec.endpoint == "http://127.0.0.1:1/v1" and spec.backend == "openai"
    one = parse_suite_text(base + 'endpoint = "http://127.0.0.1:1/v1"\n', tmp_path / "s.toml")
    assert one.models[0].all_endpoints == "http://127.0.0.1:1/v1"
    assert "endpoints" not in one.models[0].model_dump(mode="json")  # old suites keep their digest
    for bad in ('endpoints = ["http://127.0.0.1:1/v1"]\n',
                'endpoint = "http://127.0.0.1:1/v1"\nendpoints = ["http://a/v1", "http://b/v1"]\n',
                'endpoints = ["http://u:p@a/v1", "http://b/v1"]\n'):
        with pytest.raises(Exception, match="endpoint"):
            parse_suite_text(base + bad, tmp_path / "s.toml")


def test_one_request_at_a_time_fails_over_too() -> None:
    """The path a judge-scored run takes (``generate`` from worker threads), and the report
    counting only since the previous one (a suite shares the backend between runs)."""
    from harness.backends.base import GenerationRequest
    from harness.backends.replicas import open_replicas

    with FakeOpenAI() as a, DyingServer(die_after=0) as b:
        backend = open_replicas((a.url, b.url), "fake-model", api_key_env="NO_SUCH_KEY", concurrency=2)
        try:
            reqs = [GenerationRequest(sample_id=str(s), prompt=f"prompt {s}", max_tokens=8, temperature=0.0,
                                      top_p=1.0, stop=(), seed=s) for s in range(6)]
            results = [backend.generate(r) for r in reqs]
            assert all(r.error is None and r.replica == 0 for r in results)
            report = backend.replica_report()
            assert report.answered == (6, 0) and [f.replica for f in report.failures] == [1]
            assert report.failures[0].moved == 3  # seeds 1, 3, 5 were b's
            again = backend.replica_report()
            assert again.answered == (0, 0) and again.failures[0].moved == 0 and again.failures[0].replica == 1
        finally:
            backend.close()
