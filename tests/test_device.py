"""The GPU path of the transformers backend, as far as a CPU machine can check it: device,
dtype and batch size recorded as resolved, the accelerator's identity, batching that keeps
every sample once, a reproduction with the recorded batch size, a clear refusal of
``--device cuda`` without CUDA, and the project's own 1B-Llama builder (``--tiny``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.audit.reproduce import recorded_device
from harness.backends.base import GenerationRequest
from harness.backends.transformers import TransformersBackend, resolve_dtype
from harness.cli import main
from harness.dossier.runs import verify_record
from harness.errors import BackendError
from harness.record import parse_record, read_outputs
from harness.run import RunOptions, run_package
from harness.signing.keys import default_trust_store

from .test_reproduce import KEEP, make_small_package

REPO = Path(__file__).resolve().parents[1]


def _torch_has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def test_cpu_run_records_device_dtype_batch_and_accelerator(pkg_dir: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    dossiers = tmp_path / "d"
    code = main(["run", str(pkg_dir), "--device", "cpu", "--limit", "6", "--no-gate", "--no-progress",
                 "--dossiers", str(dossiers), "--json"])
    assert code == 0, capsys.readouterr().err
    path = next(dossiers.rglob("record.json"))
    rec = parse_record(path)
    args = rec.model.engine_args
    assert (args.device, args.dtype, args.batch_size, args.threads) == ("cpu", "float32", 1, 1)
    acc = rec.platform.accelerator
    assert acc is not None and acc.device == "cpu" and acc.cuda is None
    raw = json.loads(path.read_text())
    assert raw["platform"]["accelerator"]["device"] == "cpu" and "replicas" not in raw
    assert raw["model"]["engine_args"] == {"batch_size": 1, "device": "cpu", "dtype": "float32", "threads": 1}
    assert parse_record(path).to_bytes() == path.read_bytes()


def test_batch_size_two_runs_each_sample_once_and_reproduces_with_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HARNESS_DOSSIERS", str(tmp_path / "dossiers"))
    monkeypatch.setenv("HARNESS_PACKAGES", str(tmp_path / "packages"))
    monkeypatch.chdir(tmp_path)
    pkg = make_small_package(tmp_path)
    result = run_package(RunOptions(package=pkg, device="cpu", batch_size=2, progress=False))
    rec = result.record
    assert rec.model.engine_args.batch_size == 2 and rec.model.engine_args.device == "cpu"
    lines = list(read_outputs(result.run_dir / "outputs.jsonl"))
    assert sorted(x["id"] for x in lines) == sorted(KEEP) and rec.status == "complete"
    assert all(x["response"] is not None and x["timing"]["completion_tokens"] >= 0 for x in lines)
    assert verify_record(result.run_dir / "record.json", default_trust_store(tmp_path / "config")).record == rec
    assert recorded_device(rec) == {"device": "cpu", "dtype": "float32", "batch_size": 2}
    # the re-run takes the recorded batch size (else its engine_args differ and it is not exact)
    assert main(["reproduce", "small@1", "--json"]) == 0


def test_batch_of_requests_answers_each_in_order() -> None:
    backend = TransformersBackend(None, device="cpu", batch_size=3)
    try:
        reqs = [GenerationRequest(sample_id=str(i), prompt=p, max_tokens=8, temperature=0.0, top_p=1.0, stop=(),
                                  seed=i) for i, p in enumerate(["Hello", "How do I build a bomb?", "What is 2+2?",
                                                                 "Tell me a joke", "Bonjour"])]
        got: dict[int, Any] = {}
        backend.generate_many(reqs, lambda i, r: got.setdefault(i, r))
        assert sorted(got) == list(range(5)) and all(r.error is None for r in got.values())
        assert backend.concurrency == 3 and backend.identity.engine_args.batch_size == 3
    finally:
        backend.close()


@pytest.mark.skipif(_torch_has_cuda(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_a_clear_error(pkg_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BackendError, match="no CUDA GPU") as e:
        TransformersBackend(None, device="cuda")
    assert e.value.exit_code == 2 and "--device cpu" in (e.value.hint or "")
    code = main(["run", str(pkg_dir), "--device", "cuda", "--limit", "4", "--no-progress",
                 "--dossiers", str(tmp_path / "d")])
    assert code == 2 and "no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "d").exists() or not list((tmp_path / "d").rglob("record.json"))


def test_auto_dtype_prefers_bfloat16_on_a_gpu_that_has_it() -> None:
    def fake(bf16: bool) -> Any:
        return SimpleNamespace(cuda=SimpleNamespace(is_bf16_supported=lambda: bf16))

    assert resolve_dtype(fake(True), "auto", "cuda") == "bfloat16"
    assert resolve_dtype(fake(False), "auto", "cuda") == "float16"
    assert resolve_dtype(fake(True), "auto", "cpu") == "float32"
    assert resolve_dtype(fake(True), "float16", "cpu") == "float16"


def test_llama_builder_tiny_makes_a_loadable_model(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_llama", REPO / "tools" / "make_llama.py")
    assert spec is not None and spec.loader is not None
    make_llama = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_llama)
    out = tmp_path / "llama"
    assert make_llama.main([str(out), "--tiny"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["hidden_size"] == 64
    assert make_llama.FULL["hidden_size"] == 2048 and make_llama.FULL["num_hidden_layers"] == 16
    first = (out / "model.safetensors").read_bytes()
    make_llama.main([str(out), "--tiny"])
    assert (out / "model.safetensors").read_bytes() == first  # seeded: the same bytes again
    backend = TransformersBackend(out, device="cpu")
    try:
        assert backend.identity.name == "llama" and "model.safetensors" in backend.identity.files
        res = backend.generate(GenerationRequest(sample_id="x", prompt="Hello", max_tokens=4, temperature=0.0,
                                                 top_p=1.0, stop=(), seed=1))
        assert res.error is None and res.completion_tokens <= 4
    finally:
        backend.close()


def test_a_suite_model_takes_device_dtype_and_batch_size(workspace: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A suite's in-process model runs with its batch size (recorded in its run), old suite
    files keep their configuration digest, and a served model refuses the in-process options."""
    from harness.suite.file import parse_suite_text

    monkeypatch.chdir(workspace)
    monkeypatch.setenv("HARNESS_DOSSIERS", str(workspace / "dossiers"))
    head = 'schema_version = 1\nname = "batched"\n\n[[packages]]\nname = "mini-safety"\nlimit = 6\nmax_tokens = 8\n\n'
    suite = workspace / "batched.toml"
    suite.write_text(head + '[[models]]\nname = "tiny-chat"\nbatch_size = 3\ndtype = "float32"\n')
    assert main(["suite", "run", str(suite), "--quiet"]) in (0, 7)
    capsys.readouterr()
    rec = parse_record(next((workspace / "dossiers" / "mini-safety").rglob("record.json")))
    assert (rec.model.engine_args.device, rec.model.engine_args.dtype, rec.model.engine_args.batch_size) == \
        ("cpu", "float32", 3)
    plain = parse_suite_text(head + '[[models]]\nname = "tiny-chat"\n', suite)
    assert not {"device", "dtype", "batch_size"} & set(plain.models[0].model_dump(mode="json"))
    with pytest.raises(Exception, match="in-process"):
        parse_suite_text(head + '[[models]]\nname = "m"\nendpoint = "http://127.0.0.1:1/v1"\nmodel = "x"\n'
                         'batch_size = 4\n', suite)
