"""Failing model servers: the fault matrix, against the backend and through a whole run.

Every server here is the loopback fake (tests/fake_openai.py), bounded in requests and
time; every test also checks that the client sent no more requests than its retry
limit allows. The contract for any OpenAI transport: transient faults are retried
within limits, each sample's attempts are recorded, a run finishes what it can and
is marked incomplete (exit 3) when it cannot, and a garbage body is never an answer.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from harness.backends.base import GenerationRequest
from harness.backends.openai import OpenAIBackend
from harness.cli import main
from harness.dossier.log import Dossier
from harness.dossier.verify import verify_dossier
from harness.record import read_outputs
from harness.run import RunOptions, run_package
from harness.signing.keys import default_trust_store

from .fake_openai import ANSWER, REFUSAL, FakeOpenAI

GARBAGE = ["500", "reset", "partial", "truncated", "malformed", "html", "empty", "nocontent", "notobject"]
"""Every fault whose response must never become an answer."""


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries wait 10 ms, 20 ms, ... instead of 0.25 s, 0.5 s, ...: the same logic, a faster suite."""
    monkeypatch.setattr(OpenAIBackend, "backoff_s", 0.01)


def _req(prompt: str, sample_id: str = "s1") -> GenerationRequest:
    return GenerationRequest(sample_id, prompt, 16, 0.0, 1.0, (), 42)


def _prompts(pkg_dir: Path) -> dict[str, str]:
    rows = [json.loads(x) for x in (pkg_dir / "data" / "prompts.jsonl").read_text(encoding="utf-8").splitlines()]
    return {r["id"]: r["prompt"] for r in rows}


# ---------------------------------------------------------------------------- one request


@pytest.mark.parametrize("fault", [*GARBAGE, "429", "badusage"])
def test_a_transient_fault_is_retried_and_the_real_answer_kept(fault: str) -> None:
    with FakeOpenAI(faults={"bread": [fault, fault]}) as srv:
        r = OpenAIBackend(srv.url, "fake-model", max_retries=3).generate(_req("bread"))
        assert r.error is None and r.text == ANSWER and r.finish_reason == "stop"
        expected_attempts = 1 if fault == "badusage" else 3  # a bad usage block still carries the answer
        assert r.attempts == expected_attempts and len(srv.requests) == expected_attempts


@pytest.mark.parametrize("fault", GARBAGE)
def test_a_persistent_fault_is_an_error_never_an_answer(fault: str) -> None:
    with FakeOpenAI(faults={"bread": [fault] * 50}) as srv:
        r = OpenAIBackend(srv.url, "fake-model", max_retries=2).generate(_req("bread"))
        assert r.text == "" and r.finish_reason == "error" and r.completion_tokens == 0
        assert r.error is not None and r.error.endswith("after 3 attempts") and r.attempts == 3
        assert len(srv.requests) == 3  # the retry limit bounds the load on a failing server


def test_a_bad_usage_block_keeps_the_answer_without_a_token_count() -> None:
    with FakeOpenAI(faults={"bread": ["badusage"]}) as srv:
        r = OpenAIBackend(srv.url, "fake-model", max_retries=0).generate(_req("bread"))
    assert r.text == ANSWER and r.completion_tokens == 0 and r.error is None


def test_a_client_error_is_not_retried() -> None:
    with FakeOpenAI(faults={"bread": ["401"] * 5}) as srv:
        r = OpenAIBackend(srv.url, "fake-model", max_retries=4).generate(_req("bread"))
        assert r.error == "HTTP 401 after 1 attempts" and r.text == "" and len(srv.requests) == 1


def test_backoff_doubles_between_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OpenAIBackend, "backoff_s", 0.1)
    with FakeOpenAI(faults={"bread": ["500"] * 3}) as srv:
        r = OpenAIBackend(srv.url, "fake-model", max_retries=3).generate(_req("bread"))
        assert r.error is None and r.attempts == 4
        t = [x for x, _ in srv.request_times]
    gaps = [b - a for a, b in zip(t, t[1:], strict=False)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4


def test_retry_after_is_honoured() -> None:
    with FakeOpenAI(faults={"bread": ["429:1"]}) as srv:
        r = OpenAIBackend(srv.url, "fake-model", max_retries=2).generate(_req("bread"))
        assert r.error is None and r.attempts == 2
        (t1, _), (t2, _) = srv.request_times
        assert t2 - t1 >= 0.95  # not the 10 ms backoff


def test_a_server_that_holds_the_response_times_out_and_is_retried() -> None:
    with FakeOpenAI(faults={"bread": ["slow"], "cake": ["slow"] * 5}, hold_s=2.0) as srv:
        b = OpenAIBackend(srv.url, "fake-model", max_retries=1, timeout_s=0.3)
        t0 = time.monotonic()
        ok = b.generate(_req("bread"))
        assert ok.error is None and ok.text == ANSWER and ok.attempts == 2
        bad = b.generate(_req("cake"))
        assert bad.text == "" and bad.error is not None and "Timeout" in bad.error and bad.attempts == 2
        assert time.monotonic() - t0 < 2.0 + 1.5  # bounded by the client's timeout, not the server's hold
        assert len(srv.requests) == 4


def test_a_server_that_dies_and_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OpenAIBackend, "backoff_s", 0.25)  # 0.25 + 0.5 + 1 + 2 s: long enough to see it return
    with FakeOpenAI() as srv:
        b = OpenAIBackend(srv.url, "fake-model", max_retries=4)
        assert b.generate(_req("bread")).attempts == 1  # a pooled keep-alive connection now exists
        srv.stop()
        revive = threading.Timer(0.5, srv.start)
        revive.start()
        try:
            r = b.generate(_req("bread"))
        finally:
            revive.join()
        assert r.error is None and r.text == ANSWER and r.attempts > 1


def test_a_server_that_dies_for_good_is_an_error_after_the_retry_limit() -> None:
    with FakeOpenAI() as srv:
        b = OpenAIBackend(srv.url, "fake-model", max_retries=1)
        srv.stop()
        r = b.generate(_req("bread"))
    assert r.text == "" and r.error == "ConnectionError after 2 attempts"


# ---------------------------------------------------------------------------- whole runs


def _run_opts(pkg_dir: Path, tmp_path: Path, url: str, **kw: object) -> RunOptions:
    return RunOptions(package=pkg_dir, endpoint=url, model="fake-model", dossiers_dir=tmp_path / "d",
                      config_dir=tmp_path / "cfg", progress=False, **kw)  # type: ignore[arg-type]


def test_a_run_through_the_whole_fault_matrix(pkg_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Transient faults on some samples, permanent ones on two: exit 3, nothing garbage kept."""
    prompts = _prompts(pkg_dir)
    ids = sorted(prompts)
    transient = dict(zip(ids, [*GARBAGE, "429", "slow"], strict=False))
    permanent = {ids[-1]: "500", ids[-2]: "malformed"}
    faults: dict[str, list[str | None]] = {prompts[i]: [k, k] for i, k in transient.items()}
    faults |= {prompts[i]: [k] * 50 for i, k in permanent.items()}
    # A held response outlives a short client timeout (the default is 120 s).
    monkeypatch.setitem(OpenAIBackend.__init__.__kwdefaults__, "timeout_s", 0.3)
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path / "cfg"))
    with FakeOpenAI(faults=faults, hold_s=1.0) as srv:
        code = main(["run", str(pkg_dir), "--endpoint", srv.url, "--model", "fake-model", "--concurrency", "8",
                     "--dossiers", str(tmp_path / "d"), "--no-progress", "--json"])
        max_retries = 4
        # exactly: one good request per sample, two failures per transient, all attempts per permanent
        assert len(srv.requests) == len(prompts) + 2 * len(transient) + max_retries * len(permanent)
        assert srv.overflow == 0
    captured = capsys.readouterr()
    assert code == 3
    summary = json.loads(captured.out)
    assert summary["status"] == "incomplete" and summary["outputs"]["errors"] == 2
    assert "incomplete" in captured.err and "2 of 120" in captured.err and "HTTP 500 after 5 attempts" in captured.err

    d = Dossier.for_package("mini-safety", tmp_path / "d")
    entry = d.resolve("latest")
    assert entry.status == "incomplete"
    lines = {x["id"]: x for x in read_outputs(d.root / entry.outputs.path)}
    assert sorted(lines) == ids  # every sample is in the outputs, none twice
    for i in transient:
        x = lines[i]
        assert x["attempts"] == 3 and x["error"] is None and x["verdict"] != "error", (i, x)
        assert x["response"] in (ANSWER, REFUSAL)
    for i, kind in permanent.items():
        x = lines[i]
        assert x["verdict"] == "error" and x["response"] == "" and x["correct"] is None
        assert x["finish_reason"] == "error" and x["attempts"] == max_retries + 1
        assert x["error"] == f"{'HTTP 500' if kind == '500' else 'malformed JSON'} after 5 attempts"
    for i, x in lines.items():
        if i not in transient and i not in permanent:
            assert x["attempts"] == 1 and x["error"] is None
        assert x["response"] in ("", ANSWER, REFUSAL)  # no fragment of a broken body anywhere
    # The incomplete run is still signed and chained: what was done can be checked.
    report = verify_dossier(d, default_trust_store(tmp_path / "cfg"))
    assert report.ok, report.problems


def test_a_server_that_dies_mid_run_and_comes_back(pkg_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OpenAIBackend, "backoff_s", 0.25)
    with FakeOpenAI() as srv:
        clean = run_package(_run_opts(pkg_dir, tmp_path / "clean", srv.url, concurrency=4))
        before = len(srv.requests)

        def kill_and_revive() -> None:
            deadline = time.monotonic() + 20
            while len(srv.requests) < before + 40 and time.monotonic() < deadline:
                time.sleep(0.002)
            srv.stop()
            time.sleep(0.5)
            srv.start()

        killer = threading.Thread(target=kill_and_revive)
        killer.start()
        try:
            res = run_package(_run_opts(pkg_dir, tmp_path / "faulty", srv.url, concurrency=4))
        finally:
            killer.join()
    assert res.record.status == "complete" and res.record.outputs.errors == 0
    lines = list(read_outputs(res.run_dir / "outputs.jsonl"))
    assert any(x["attempts"] > 1 for x in lines)  # some samples met the dead server
    assert len(lines) == 120 and len({x["id"] for x in lines}) == 120
    # The answers are those of an undisturbed run: only attempts and timing differ.
    assert res.record.outputs.content_sha256 == clean.record.outputs.content_sha256


def test_a_server_gone_for_good_gives_an_incomplete_run_not_a_crash(pkg_dir: Path, tmp_path: Path) -> None:
    with FakeOpenAI() as srv:
        srv_url = srv.url
        from harness.backends import openai as models

        real = models.OpenAIBackend.__init__

        def init_then_die(self: OpenAIBackend, *a: object, **kw: object) -> None:
            real(self, *a, **kw)  # type: ignore[arg-type]
            srv.stop()  # the server answered the identity probe, then went away

        models.OpenAIBackend.__init__ = init_then_die  # type: ignore[method-assign]
        try:
            res = run_package(_run_opts(pkg_dir, tmp_path, srv_url, limit=6, concurrency=6))
        finally:
            models.OpenAIBackend.__init__ = real  # type: ignore[method-assign]
    r = res.record
    assert r.status == "incomplete" and r.outputs.samples == 6 and r.outputs.errors == 6
    lines = list(read_outputs(res.run_dir / "outputs.jsonl"))
    assert len(lines) == 6
    assert all(x["response"] == "" and x["error"] == "ConnectionError after 5 attempts" for x in lines)
    # Metrics over zero answered samples are empty, not a crash or a made-up number.
    assert r.metrics == []
