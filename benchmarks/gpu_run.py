"""The GPU path, measured: one prepared script for a machine with PyTorch and transformers
but no vLLM and no network (issue 19).

It runs the default package (mini-safety) with the in-process transformers backend on
two models, each twice with the same seed: the embedded tiny-chat model, and a randomly
initialised Llama of about 1B parameters that it builds itself first
(``tools/make_llama.py``; nothing is downloaded). For every run it prints the wall time
(model load included), samples/s, and whether the two runs of a model gave identical
outputs (their ``outputs.content_sha256``), plus the accelerator the record names. The
records are signed with a throwaway key into a temporary dossier.

    python benchmarks/gpu_run.py                          # --device cuda, the 1B Llama
    python benchmarks/gpu_run.py --device cpu --tiny --limit 24    # a CPU check

Why twice: on a GPU, some kernels are not deterministic run to run; the content digest
says whether that reached a greedy answer. ``--batch-size`` is recorded like the device
and dtype, since batching changes the arithmetic too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _one_run(package: str, model: str | None, args: argparse.Namespace) -> dict[str, Any]:
    from harness.run import RunOptions, run_package

    start = time.perf_counter()
    result = run_package(RunOptions(package=package, model=model, device=args.device, dtype=args.dtype,
                                    batch_size=args.batch_size, threads=args.threads, limit=args.limit,
                                    progress=False, resume="fresh"))
    wall = time.perf_counter() - start
    rec = result.record
    acc = rec.platform.accelerator
    return {
        "model": rec.model.name, "samples": rec.outputs.samples, "errors": rec.outputs.errors, "wall_s": round(wall, 2),
        "samples_per_s": round(rec.outputs.samples / wall, 2), "record_duration_s": rec.duration_s,
        "content_sha256": rec.outputs.content_sha256, "device": rec.model.engine_args.device,
        "dtype": rec.model.engine_args.dtype, "batch_size": rec.model.engine_args.batch_size,
        "accelerator": acc.model_dump(mode="json") if acc else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (the CPU path; default 1 as a run)")
    ap.add_argument("--limit", type=int, help="a stratified subset of about N samples (default: all 120)")
    ap.add_argument("--tiny", action="store_true", help="a tiny Llama instead of the 1B one (CPU checks)")
    ap.add_argument("--llama", type=Path, help="an already built Llama folder (skips the build)")
    ap.add_argument("--skip-embedded", action="store_true", help="only the Llama")
    ap.add_argument("--package", default=str(REPO / "packages" / "mini-safety"))
    ap.add_argument("--json-out", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (model, dossier) afterwards")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="harness-gpu-run-"))
    for var, sub in (("HARNESS_CONFIG_DIR", "config"), ("HARNESS_DOSSIERS", "dossiers"),
                     ("HARNESS_CACHE_DIR", "cache"), ("HARNESS_CHECKPOINTS_DIR", "checkpoints")):
        os.environ[var] = str(work / sub)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    sys.path.insert(0, str(REPO / "tools"))
    import make_llama

    figures: dict[str, Any] = {"device_asked": args.device, "runs": []}
    llama = args.llama
    if llama is None:
        llama = work / ("llama-tiny" if args.tiny else "llama-1b")
        t0 = time.perf_counter()
        params = make_llama.build(llama, tiny=args.tiny)
        figures["llama_build"] = {"parameters": params, "seconds": round(time.perf_counter() - t0, 1)}
        print(f"built {llama.name}: {params / 1e6:.1f}M parameters in {figures['llama_build']['seconds']}s", flush=True)
    models: list[tuple[str, str | None]] = [] if args.skip_embedded else [("tiny-chat (embedded)", None)]
    models.append((llama.name, str(llama)))
    print(f"{'model':<22} {'run':>3} {'samples':>7} {'wall s':>8} {'samples/s':>9}  device/dtype/batch  content digest",
          flush=True)
    for label, model in models:
        pair = []
        for n in (1, 2):
            r = _one_run(args.package, model, args)
            pair.append(r)
            figures["runs"].append({"label": label, "run": n, **r})
            print(f"{label:<22} {n:>3} {r['samples']:>7} {r['wall_s']:>8.2f} {r['samples_per_s']:>9.2f}  "
                  f"{r['device']}/{r['dtype']}/{r['batch_size']:<10} {r['content_sha256'][:16]}", flush=True)
        same = pair[0]["content_sha256"] == pair[1]["content_sha256"]
        figures.setdefault("identical", {})[label] = same
        print(f"{label:<22} two runs identical outputs: {'yes' if same else 'NO'}", flush=True)
    acc = figures["runs"][-1]["accelerator"]
    print(f"accelerator: {json.dumps(acc, sort_keys=True)}", flush=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if args.keep:
        print(f"kept {work}", flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)  # the 1B model is about 2 GB
    return 0 if all(figures["identical"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
