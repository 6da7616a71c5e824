"""Every benchmark figure of issue 8 in one go: `uv run python benchmarks/run_all.py [--quick]`.

Prints the machine (CPU, cores, load average before and after: figures taken on a
busy machine are labelled as such), then the instant server's capacity, the
yardstick (N=200 and 2000: median of 3 after a warm-up; the curve at 1k, 10k, 100k
with peak memory), hashing against sha256sum, `harness --help`, a 10,000-entry
dossier (append at several lengths, verify chain-only and full) and a diff of two
100,000-sample runs. `--quick` shrinks the big cases (curve to 10k, 256 MiB, 2,000
entries) to finish in about a minute. The vLLM comparison is separate
(benchmarks/vllm_compare.py): it needs the CPU vLLM environment and takes minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import capacity  # noqa: E402
import product_path  # noqa: E402
import yardstick  # noqa: E402


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores usable, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def load() -> str:
    one, five, _ = os.getloadavg()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = " (BUSY: other work competes for the CPU; figures are pessimistic)" if five > 0.5 * cores else ""
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min){busy}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller big cases (about a minute)")
    ap.add_argument("--workdir", type=Path, help="keep the scratch packages and dossiers here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    print(f"machine: {machine()}")
    print(f"before: {load()}\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        ws = args.workdir or Path(tmp)
        ws.mkdir(parents=True, exist_ok=True)

        print("== instant server capacity (lean asyncio client, 64 connections)", flush=True)
        rate = capacity.measure(total=10_000 if args.quick else 20_000, concurrency=64)
        print(f"instant server: {rate:,.0f} requests/s\n", flush=True)

        print("== yardstick: harness run, whole process, 64 in flight, against the instant server", flush=True)
        curve = (1000, 10_000) if args.quick else (1000, 10_000, 100_000)
        yardstick.run(ws / "yardstick", (200, 2000), curve)
        print(flush=True)

        print("== rest of the product path", flush=True)
        product_path.help_time(ws)
        product_path.hashing(ws, 256 if args.quick else 1024)
        (ws / "blob.bin").unlink(missing_ok=True)
        product_path.dossier(ws / "dossier", 2000 if args.quick else 10_000)
        big = 10_000 if args.quick else 100_000
        # The yardstick ran this package twice (warm-up is only for 200/2000; the curve
        # runs once): one more run gives the two runs that `harness diff` compares.
        from instant_server import start_in_subprocess
        from workload import build_package, timed_run

        proc, url = start_in_subprocess()
        try:
            pkg = build_package(ws / "yardstick", big)
            timed_run(ws / "yardstick", pkg, url)
        finally:
            proc.terminate()
            proc.wait(10)
        product_path.diff(ws / "yardstick", f"yardstick-{big}")
    print(f"\nafter: {load()}")
    print(f"total benchmark time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
