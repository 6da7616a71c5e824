"""Runs against an OpenAI-compatible endpoint: retries, faults, concurrency, and secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.backends.base import GenerationRequest
from harness.backends.openai import OpenAIBackend
from harness.errors import BackendError
from harness.run import RunOptions, run_package

from .fake_openai import FakeOpenAI


def _req(prompt: str) -> GenerationRequest:
    return GenerationRequest("s1", prompt, 16, 0.0, 1.0, (), 42)


def test_identity_and_request_shape() -> None:
    with FakeOpenAI() as srv:
        b = OpenAIBackend(srv.url, "fake-model", max_retries=0)
        r = b.generate(_req("how to bake bread"))
        assert r.text.startswith("Sure") and r.error is None and r.completion_tokens == 9
        sent = srv.requests[0]
        assert sent["seed"] == 42 and sent["max_tokens"] == 16 and sent["temperature"] == 0.0
        assert b.identity.backend == "openai" and b.identity.engine.version == "0.0-fake"
        assert b.identity.revision == "fake/root"


def test_unknown_served_model_is_a_clear_error() -> None:
    with FakeOpenAI() as srv, pytest.raises(BackendError, match="does not serve 'other'"):
        OpenAIBackend(srv.url, "other")


@pytest.mark.parametrize("fault", ["500", "429", "malformed", "empty", "reset"])
def test_transient_faults_are_retried(fault: str) -> None:
    with FakeOpenAI(faults={"bread": [fault, fault]}) as srv:
        b = OpenAIBackend(srv.url, "fake-model", max_retries=3)
        r = b.generate(_req("bread"))
        assert r.error is None and r.attempts == 3 and r.text.startswith("Sure")


def test_persistent_fault_is_an_error_never_an_answer() -> None:
    with FakeOpenAI(faults={"bread": ["malformed"] * 10}) as srv:
        r = OpenAIBackend(srv.url, "fake-model", max_retries=2).generate(_req("bread"))
        assert r.error == "malformed JSON after 3 attempts" and r.text == "" and r.finish_reason == "error"


def test_run_through_an_endpoint_with_faults_and_a_secret(pkg_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-PLANTED-SECRET-0123456789"
    monkeypatch.setenv("MY_KEY", secret)
    # the prompt that mentions Python fails twice (HTTP 500, then 429) before it succeeds
    with FakeOpenAI(faults={"Python": ["500", "429"]}) as srv:
        first = run_package(RunOptions(package=pkg_dir, endpoint=srv.url, model="fake-model", api_key_env="MY_KEY",
                                       concurrency=8, dossiers_dir=tmp_path / "d", config_dir=tmp_path / "cfg", progress=False))
        second = run_package(RunOptions(package=pkg_dir, endpoint=srv.url, model="fake-model", api_key_env="MY_KEY",
                                        concurrency=3, dossiers_dir=tmp_path / "d", config_dir=tmp_path / "cfg", progress=False))
        assert all(h == f"Bearer {secret}" for h in srv.auth_headers)
    assert first.record.status == "complete" and first.record.model.backend == "openai"
    lines = [json.loads(x) for x in (first.run_dir / "outputs.jsonl").read_text().splitlines()]
    retried = [x for x in lines if x["attempts"] > 1]
    assert retried and all(x["verdict"] != "error" for x in retried)
    # concurrency changes completion order, not the answers
    assert second.previous is not None and second.previous.outputs_identical and not second.previous.flips
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f


def test_an_unreachable_endpoint_is_a_clear_error(pkg_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="cannot reach"):
        run_package(RunOptions(package=pkg_dir, endpoint="http://127.0.0.1:9/v1", model="m", dossiers_dir=tmp_path, progress=False))
