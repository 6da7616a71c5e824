"""How long `harness reproduce` takes to rebuild the evaluation environment from a lockfile.

Builds the uv environment for lockfiles/harness.txt in a fresh cache folder (uv's own
wheel cache is whatever this machine has), then asks for it again (the cached path).
Usage: `uv run python benchmarks/reproduce_env.py [LOCKFILE]`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    lock = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "lockfiles" / "harness.txt")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HARNESS_CACHE_DIR"] = tmp
        from harness.audit.environment import build_environment

        t0 = time.perf_counter()
        python = build_environment(lock)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        build_environment(lock)
        cached = time.perf_counter() - t0
        print(f"lockfile {lock.name}: built {python.parent.parent.name} in {built:.1f} s; cached lookup {cached * 1000:.1f} ms")


if __name__ == "__main__":
    main()
