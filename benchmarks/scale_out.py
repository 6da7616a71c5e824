"""Per-sample figures for docs/scale-out.md: the local executor against the Ray executor.

Measures, on this machine's CPU, with the library call ``harness suite run`` makes
(:func:`harness.suite.run.run_suite`), each suite of one package x one model:

- the embedded model (``tiny-chat``, in-process transformers) on mini-safety: seconds
  per sample of generation, scoring, journaling, signing and appending (the whole pair);
- the zero-latency server (``benchmarks/instant_server.py``) on XSTest (the data mirror
  ``../shared/data``, as ``--mirror``): the harness's own cost per sample when the model
  costs nothing;

each with ``--executor local`` and ``--executor ray`` (a local Ray instance of 2 CPUs,
started once before the timed runs; its start-up is reported separately), at two sizes
after a warm-up each. Reported: the wall time, the Ray worker's start-up (a new process
that imports the harness and opens the model and scorer, from the command's own "ready"
log line), the cost per added sample of the pair without that start-up (the slope
between the two sizes), and the generation latency the backend measured per sample. Needs the
``ray`` extra (``uv sync --extra ray``, or the nox session's environment:
``.nox/ray/bin/python benchmarks/scale_out.py``). Everything is written under a
temporary folder (keys, dossiers, caches), removed at the end. About 2 minutes.

``--json`` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MIRROR = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "benchmarks"))


def _suite(folder: Path, name: str, packages: list[tuple[str, int | None]], model: str) -> Path:
    text = f'schema_version = 1\nname = "{name}"\n'
    for pkg, limit in packages:
        text += f'\n[[packages]]\nname = "{REPO / "packages" / pkg}"\n' + (f"limit = {limit}\n" if limit else "")
    text += "\n" + model + "\n[gate]\n"
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def _time(suite: Path, executor: str, dossiers: Path) -> dict[str, float]:
    """One suite run: wall time, samples, the worker's start-up (Ray: until its model and
    scorer are open, from the command's own log line) and the mean generation latency the
    backend measured per sample (the outputs' ``timing.latency_s``)."""
    from harness.record import parse_output_line
    from harness.suite.run import SuiteOptions, run_suite

    ready = [0.0]

    def log(message: str) -> None:
        if message.startswith("ready "):
            ready[0] = float(message.rsplit(" in ", 1)[1].removesuffix(" s"))

    start = time.perf_counter()
    result = run_suite(SuiteOptions(suite=suite, mirror=MIRROR, jobs=2, dossiers_dir=dossiers,
                                    executor=executor, log=log))  # type: ignore[arg-type]
    wall = time.perf_counter() - start
    assert result.exit_code == 0 and result.record is not None, [o.message for o in result.unfinished]
    latencies = []
    for o in result.outcomes:
        assert o.entry is not None
        path = dossiers / o.package / o.entry.outputs.path
        for n, raw in enumerate(path.read_bytes().splitlines(), 1):
            line = parse_output_line(path, n, raw)
            if line is not None:
                latencies.append(line["timing"]["latency_s"])
    n = len(latencies)
    return {"wall_s": wall, "samples": n, "worker_start_s": ready[0],
            "generation_ms_per_sample": 1000 * sum(latencies) / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--embedded-samples", type=int, default=40, help="mini-safety samples on tiny-chat")
    args = ap.parse_args()
    import ray
    from instant_server import MODEL, start_in_subprocess

    tmp = Path(tempfile.mkdtemp(prefix="scale-out-"))
    for var, sub in (("HARNESS_CONFIG_DIR", "config"), ("HARNESS_CACHE_DIR", "cache"),
                     ("HARNESS_CHECKPOINTS_DIR", "checkpoints"), ("HARNESS_DOSSIERS", "trap")):
        os.environ[var] = str(tmp / sub)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    server, url = start_in_subprocess()
    figures: dict[str, Any] = {"machine": f"{os.cpu_count()} CPUs", "ray": ray.__version__}
    try:
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=256 * 1024 * 1024)
        figures["ray_start_s"] = round(time.perf_counter() - start, 2)
        model_of = {"embedded": '[[models]]\nname = "tiny-chat"\n',
                    "instant": f'[[models]]\nname = "instant"\nendpoint = "{url}"\nmodel = "{MODEL}"\nconcurrency = 64\n'}
        sizes = {"embedded": ("mini-safety", args.embedded_samples // 4, args.embedded_samples),
                 "instant": ("xstest", 50, 450)}
        for label, (package, small, large) in sizes.items():
            for executor in ("local", "ray"):
                runs = []
                for n in (small, large):
                    suite = _suite(tmp, f"{label}-{executor}-{n}", [(package, n)], model_of[label])
                    _time(suite, executor, tmp / f"warm-{label}-{executor}-{n}")  # warm-up: imports, caches
                    runs.append(_time(suite, executor, tmp / f"{label}-{executor}-{n}"))
                # the pair's own time (wall less the worker's start-up), per added sample
                own = [r["wall_s"] - r["worker_start_s"] for r in runs]
                figures[f"{label}_{executor}"] = {
                    "package": package, "samples": [small, large],
                    "wall_s": [round(r["wall_s"], 2) for r in runs],
                    "worker_start_s": [round(r["worker_start_s"], 2) for r in runs],
                    "ms_per_sample": round(1000 * (own[1] - own[0]) / (large - small), 2),
                    "generation_ms_per_sample": round(runs[1]["generation_ms_per_sample"], 2)}
    finally:
        ray.shutdown()
        server.terminate()
        server.wait(timeout=10)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print(f"Ray {figures['ray']}, local instance of 2 CPUs started in {figures['ray_start_s']} s")
    print("| model | executor | samples (small, large) | wall (s) | worker start-up (s) | "
          "ms per added sample | generation latency (ms per sample) |")
    print("|---|---|---|---|---|---|---|")
    for label in ("embedded", "instant"):
        for executor in ("local", "ray"):
            f = figures[f"{label}_{executor}"]
            print(f"| {label} ({f['package']}) | {executor} | {f['samples'][0]}, {f['samples'][1]} | "
                  f"{f['wall_s'][0]}, {f['wall_s'][1]} | {f['worker_start_s'][0]}, {f['worker_start_s'][1]} | "
                  f"{f['ms_per_sample']} | {f['generation_ms_per_sample']} |")

if __name__ == "__main__":
    main()
