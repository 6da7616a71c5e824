"""The rest of the product path: hashing, `harness --help`, dossier verify and append, diff.

Each figure is the median of several runs; where a command is timed, it is the whole
process (`python -m harness ...`), as a user would see it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import harness_env  # noqa: E402


def _median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def _harness(workspace: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, check=check,
                          env=harness_env(workspace))


def hashing(workspace: Path, size_mb: int, repeats: int = 3) -> dict[str, float]:
    """harness's streaming sha256 against coreutils sha256sum on the same file (page cache warm)."""
    from harness._internal.hashing import sha256_file

    path = workspace / "blob.bin"
    if not path.is_file() or path.stat().st_size != size_mb << 20:
        with open(path, "wb") as fh:
            block = os.urandom(1 << 20)
            for i in range(size_mb):
                fh.write(block[:-8] + i.to_bytes(8, "little"))
    out: dict[str, float] = {}
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", str(path)], capture_output=True, check=True)  # warm the page cache
        out["sha256sum_s"], _ = _median_time(
            lambda: subprocess.run(["sha256sum", str(path)], capture_output=True, check=True), repeats)
    sha256_file(path)
    out["harness_s"], _ = _median_time(lambda: sha256_file(path), repeats)
    out["size_mb"] = size_mb
    print(f"hash {size_mb} MiB: sha256sum {out.get('sha256sum_s', float('nan')):.2f} s, harness {out['harness_s']:.2f} s "
          f"-> {out.get('sha256sum_s', float('nan')) / out['harness_s']:.0%} of sha256sum's speed "
          f"({size_mb / out['harness_s']:.0f} MiB/s)", flush=True)
    return out


def help_time(workspace: Path, repeats: int = 7) -> float:
    _harness(workspace, "--help")
    med, _ = _median_time(lambda: _harness(workspace, "--help"), repeats)
    base, _ = _median_time(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeats)
    print(f"harness --help: {med:.3f} s (python -c pass: {base:.3f} s)", flush=True)
    return med


def dossier(workspace: Path, entries: int, repeats: int = 3) -> dict[str, object]:
    """A dossier of `entries` signed runs (10 samples each): append cost as it grows, then verify."""
    from dossier_fixture import build_dossier

    root = workspace / "dossiers"
    appends = build_dossier(root, workspace / "config", entries,
                            checkpoints=tuple(c for c in (10, 100, 1000, entries - 5) if c + 5 <= entries))
    for n, secs in appends.items():
        print(f"dossier append at length {n:>6}: {secs * 1000:.1f} ms (median of 5 append_run calls, fsync included)",
              flush=True)
    trust: list[str] = []  # the workspace's own key is in its default trust store (HARNESS_CONFIG_DIR)
    r = _harness(workspace, "dossier", "verify", "bench", "--dossiers", str(root), *trust, check=False)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode()[-2000:])
    chain, chain_runs = _median_time(
        lambda: _harness(workspace, "dossier", "verify", "bench", "--dossiers", str(root), "--chain-only", *trust), repeats)
    full, full_runs = _median_time(
        lambda: _harness(workspace, "dossier", "verify", "bench", "--dossiers", str(root), *trust), repeats)
    print(f"dossier verify, {entries} entries: chain and file digests {chain:.2f} s; "
          f"with every signature and record {full:.2f} s", flush=True)
    return {"appends": appends, "verify_chain_s": chain, "verify_full_s": full}


def _timed_harness(env: dict[str, str], *args: str) -> tuple[float, float, bytes]:
    """(wall seconds, peak RSS MB, stdout) of one whole `python -m harness` process (wait4: its own peak)."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "harness", *args], stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) not in (0, 1):  # 1: the runs differ
            raise RuntimeError(f"harness {' '.join(args)} failed")
        out.seek(0)
        return wall, usage.ru_maxrss / 1024, out.read()


def _write_altered_run(run: Path, altered: Path) -> None:
    """A copy of a run with every tenth verdict flipped (answer "Sure."), record digests to match."""
    from harness._internal.hashing import sha256_file
    from harness.record import content_digest, output_line

    altered.mkdir(exist_ok=True)
    lines = []
    with open(run / "outputs.jsonl", encoding="utf-8") as src, open(altered / "outputs.jsonl", "wb") as dst:
        for n, raw in enumerate(src):
            line = json.loads(raw)
            if n % 10 == 0:
                line["verdict"] = "compliance" if line["verdict"] == "refusal" else "refusal"
                line["response"] = "Sure."
            dst.write(output_line(line))
            lines.append(line)
    record = json.loads((run / "record.json").read_text())
    record["outputs"]["sha256"] = sha256_file(altered / "outputs.jsonl")
    record["outputs"]["content_sha256"] = content_digest(lines)
    (altered / "record.json").write_text(json.dumps(record))


def diff(workspace: Path, package: str, repeats: int = 5) -> dict[str, float]:
    """`harness diff` of the package's two runs, then of run 1 against a copy of run 2 with 10% of verdicts flipped.

    Each is timed twice over: with the interpreter as this environment runs it and, where
    that is with PYTHONDONTWRITEBYTECODE set (every import compiled from source, ~0.5 s
    here), also with bytecode cached as on a usual install (PYTHONPYCACHEPREFIX in the
    scratch workspace, after a warm-up run), so both figures can be compared.
    """
    root = workspace / "dossiers"
    same = ("diff", f"{package}@1", f"{package}@2", "--dossiers", str(root), "--json")
    # The altered run is written as a run writes it (record.output_line, its digests in
    # its record), so the diff reads it as it would a real second run: nothing can be
    # skipped, both outputs files are read and every metric gets a paired bootstrap.
    # Written by a child process: wait4's peak RSS of a diff counts the size of the
    # process that started it, which must stay small.
    runs = sorted((root / package / "runs").iterdir())
    altered = workspace / "altered-run"
    writer = multiprocessing.get_context("fork").Process(target=_write_altered_run, args=(runs[1], altered))
    writer.start()
    writer.join()
    if writer.exitcode != 0:
        raise RuntimeError("writing the altered run failed")
    differ = ("diff", str(runs[0] / "record.json"), str(altered / "record.json"), "--json")

    env = harness_env(workspace)
    modes = {"as run here": env}
    if env.get("PYTHONDONTWRITEBYTECODE"):
        cached = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(workspace / "pycache")
        modes = {"PYTHONDONTWRITEBYTECODE=1 (as set here)": env, "bytecode cached": cached}
    out: dict[str, float] = {}
    for mode, mode_env in modes.items():
        for case, args in (("identical answers", same), ("10% of verdicts differ", differ)):
            _, _, stdout = _timed_harness(mode_env, *args)  # warm-up (page cache; bytecode where cached)
            if case != "identical answers" and json.loads(stdout)["verdict_flips"] == 0:
                raise RuntimeError("the altered run shows no flipped verdict")
            runs_ = [_timed_harness(mode_env, *args) for _ in range(repeats)]
            walls = sorted(w for w, _, _ in runs_)
            med = statistics.median(walls)
            rss = max(m for _, m, _ in runs_)
            out[f"{mode}: {case}"] = med
            print(f"harness diff of two runs of {package} ({case}; {mode}): median {med:.2f} s of {repeats} "
                  f"(min {walls[0]:.2f}, max {walls[-1]:.2f}), peak RSS {rss:.0f} MB", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as tmp:
        ws = Path(tmp)
        help_time(ws)
        hashing(ws, 256 if args.quick else 1024)
        dossier(ws, 2000 if args.quick else 10_000)


if __name__ == "__main__":
    main()
