"""The yardstick: `harness run` against the instant server, whole process, as in issue 8.

For N=200 and N=2000: one warm-up run, then the median of 3. Then the cost curve at
1k, 10k and 100k samples (one run each after the warm-up) with peak memory, split
into start-up (fork to first request), generation (first to last request, as the
server saw them) and tail (last request to exit: metrics and CIs, record, signature,
dossier append, diff against the previous run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from instant_server import start_in_subprocess  # noqa: E402
from workload import RunTiming, build_package, timed_run  # noqa: E402


def _row(label: str, runs: list[RunTiming]) -> str:
    med = statistics.median
    return (f"{label:>9} | {med(r.wall_s for r in runs):7.2f} s | {med(r.samples / r.wall_s for r in runs):8.0f} | "
            f"{med(r.startup_s for r in runs):6.2f} s | {med(r.rate for r in runs):8.0f} | "
            f"{med(r.tail_s for r in runs):6.2f} s | {max(r.peak_rss_mb for r in runs):6.0f} MB | "
            f"{', '.join(f'{r.wall_s:.2f}' for r in runs)}")


HEADER = ("        N |    wall   | samples/s | start-up | gen rate |  tail   | peak RSS | runs (wall s)\n"
          "----------|-----------|-----------|----------|----------|---------|----------|--------------")


def run(workspace: Path, sizes_median: tuple[int, ...], sizes_curve: tuple[int, ...], repeats: int = 3) -> dict[str, list[RunTiming]]:
    proc, url = start_in_subprocess()
    results: dict[str, list[RunTiming]] = {}
    try:
        print(HEADER, flush=True)
        for n in sizes_median:
            pkg = build_package(workspace, n)
            timed_run(workspace, pkg, url)  # warm-up: page cache, .pyc files, the signing key
            results[f"{n}"] = runs = [timed_run(workspace, pkg, url) for _ in range(repeats)]
            print(_row(f"{n}", runs), flush=True)
        for n in sizes_curve:
            pkg = build_package(workspace, n)
            if not results:
                timed_run(workspace, build_package(workspace, 200), url)
            results[f"curve {n}"] = runs = [timed_run(workspace, pkg, url)]
            print(_row(f"{n}", runs), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="curve at 1k and 10k only")
    ap.add_argument("--workdir", type=Path, help="keep packages and dossiers here (default: a temporary folder)")
    args = ap.parse_args()
    curve = (1000, 10_000) if args.quick else (1000, 10_000, 100_000)
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        run(args.workdir or Path(tmp), (200, 2000), curve)


if __name__ == "__main__":
    main()
