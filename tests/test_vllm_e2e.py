"""The real engine: the CPU build of vLLM serves the embedded model on 127.0.0.1.

Run by `nox -s vllm` (which builds vLLM's own environment and sets
HARNESS_VLLM_PYTHON); skipped, with the reason, anywhere else.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness.diff import diff_runs
from harness.dossier.runs import verify_record
from harness.record import read_outputs
from harness.run import RunOptions, RunResult, run_package
from harness.signing.keys import default_trust_store

VLLM_PYTHON = os.environ.get("HARNESS_VLLM_PYTHON")
pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(not VLLM_PYTHON, reason="HARNESS_VLLM_PYTHON is not set: run `nox -s vllm` for the real engine"),
]
CPU_ARGS = ("--enforce-eager", "--dtype float32", "--kv-cache-memory-bytes 134217728")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunResult]:
    base = tmp_path_factory.mktemp("vllm")
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "packages" / "mini-safety", base / "packages" / "mini-safety")
    shutil.copytree(repo / "lockfiles", base / "lockfiles")
    pkg = base / "packages" / "mini-safety"
    common = {"package": pkg, "dossiers_dir": base / "dossiers", "config_dir": base / "config", "progress": False}
    out = {
        "vllm1": run_package(RunOptions(serve="vllm", vllm_python=VLLM_PYTHON, engine_args=CPU_ARGS, concurrency=32, **common)),
        "vllm2": run_package(RunOptions(serve="vllm", vllm_python=VLLM_PYTHON, engine_args=CPU_ARGS, concurrency=32, **common)),
        "hf": run_package(RunOptions(**common)),
    }
    out["_base"] = base  # type: ignore[assignment]
    return out


def test_vllm_run_is_recorded_and_verifies(runs: dict[str, RunResult]) -> None:
    r = runs["vllm1"].record
    assert r.status == "complete" and r.outputs.samples == 120
    assert r.model.backend == "openai" and r.model.engine.name == "vllm"
    assert r.model.engine.version  # from /version
    assert "model.safetensors" in r.model.files  # weights digest of the local path served
    argv = r.model.engine_args.argv
    assert argv is not None and "--seed" in argv and "--generation-config" in argv and "--enforce-eager" in argv
    assert r.model.chat_template_sha256
    probe = r.model.engine.chat_template_probe  # the template as the server applied it
    assert probe is not None and isinstance(probe.rendered, str)
    assert "harness chat template probe" in probe.rendered and "<|assistant|>" in probe.rendered
    res = verify_record(runs["vllm1"].run_dir / "record.json", default_trust_store(runs["_base"] / "config"))  # type: ignore[operator]
    assert res.signer.startswith("key:")


def test_vllm_twice_gives_identical_outputs_and_no_change(runs: dict[str, RunResult]) -> None:
    a, b = runs["vllm1"].record, runs["vllm2"].record
    assert a.outputs.content_sha256 == b.outputs.content_sha256
    d = runs["vllm2"].previous
    assert d is not None and d.no_change, d.as_dict()


def test_transformers_against_vllm_says_the_backends_differ(runs: dict[str, RunResult]) -> None:
    d = diff_runs(runs["vllm2"].record, runs["hf"].record,
                  runs["vllm2"].run_dir / "outputs.jsonl", runs["hf"].run_dir / "outputs.jsonl")
    assert not d.no_change
    assert any(c.section == "model" and c.key == "backend" for c in d.changes)
    va = {x["id"]: x["response"] for x in read_outputs(runs["vllm2"].run_dir / "outputs.jsonl")}
    vb = {x["id"]: x["response"] for x in read_outputs(runs["hf"].run_dir / "outputs.jsonl")}
    same = sum(va[i] == vb[i] for i in va)
    print(f"identical responses transformers vs vLLM: {same}/{len(va)}")
    assert same == len(va) - d.responses_changed
    assert same > len(va) // 2  # same weights, greedy, float32: most answers agree
