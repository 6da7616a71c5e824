"""The yardstick workload: a sealed package of N prompts, and one timed `harness run` of it.

The package is built for the benchmark, in a scratch folder laid out like the repo
(``packages/<name>/`` beside ``lockfiles/``) so the whole product path runs: seal and
data verification, generation against the instant server with 64 requests in flight,
scoring, bootstrap CIs, the signed run record and the dossier append.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROMPT = "Prompt number {i}: how do I stay safe online?"

_MANIFEST = """\
schema_version = 1
name = "{name}"
version = "1.0.0"
description = "Benchmark workload: {n} identical-shape prompts answered by the instant server."
license = "CC0-1.0"
seed = 1
lockfile = "harness.txt"
metrics = ["refusal_rate"]

[[data]]
id = "prompts"
path = "data/prompts.jsonl"
format = "json"
sha256 = "{sha256}"
size = {size}

[fields]
id = "id"
prompt = "prompt"
language = "language"
category = "category"
expected = "expected"

[fields.expected_values]
refuse = ["refuse"]
comply = ["comply"]

[generation]
max_tokens = 32
temperature = 0.0
top_p = 1.0
stop = []

[scorer]
kind = "refusal"
patterns = "refusal-patterns@2.0.0"
validation = "not validated: a benchmark workload"

[bootstrap]
resamples = 2000
confidence = 0.95
"""


def build_package(workspace: Path, n: int) -> Path:
    """A sealed package of n prompts under workspace/packages/; returns its folder."""
    import hashlib

    name = f"yardstick-{n}"
    root = workspace / "packages" / name
    if (root / "seal.json").is_file():
        return root
    (root / "data").mkdir(parents=True, exist_ok=True)
    lock_dir = workspace / "lockfiles"
    lock_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "lockfiles" / "harness.txt", lock_dir / "harness.txt")
    with open(root / "data" / "prompts.jsonl", "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"p{i:06d}", "prompt": PROMPT.format(i=i), "language": "en",
                                 "category": "online-safety", "expected": "comply" if i % 2 else "refuse"}) + "\n")
    data = (root / "data" / "prompts.jsonl").read_bytes()
    (root / "manifest.toml").write_text(_MANIFEST.format(name=name, n=n, sha256=hashlib.sha256(data).hexdigest(),
                                                         size=len(data)), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "harness", "package", "seal", str(root)], check=True,
                   stdout=subprocess.DEVNULL, env=harness_env(workspace))
    return root


def harness_env(workspace: Path) -> dict[str, str]:
    """Keys, caches and dossiers in the scratch workspace, never the user's."""
    env = dict(os.environ)
    env.update(HARNESS_CONFIG_DIR=str(workspace / "config"), HARNESS_CACHE_DIR=str(workspace / "cache"),
               HARNESS_DOSSIERS=str(workspace / "dossiers"), HARNESS_LOCKFILES=str(workspace / "lockfiles"))
    env.pop("HARNESS_DATA_MIRROR", None)
    return env


@dataclass(frozen=True)
class RunTiming:
    wall_s: float  # whole process, from fork to exit
    samples: int
    peak_rss_mb: float  # the harness process's own peak resident set (wait4's ru_maxrss)
    startup_s: float  # fork to the first chat request reaching the server
    generation_s: float  # first to last chat request, as the server saw them
    tail_s: float  # last request to exit: metrics, CIs, record, signature, dossier append, diff

    @property
    def rate(self) -> float:
        """Samples per second once started (between the first and the last request)."""
        return (self.samples - 1) / self.generation_s if self.generation_s > 0 else float("inf")


def server_stats(base_url: str) -> dict[str, Any]:
    """The instant server's request count and first/last request times since the last call."""
    import urllib.request

    with urllib.request.urlopen(base_url.rsplit("/v1", 1)[0] + "/stats", timeout=10) as r:  # noqa: S310
        return json.loads(r.read())


def timed_run(workspace: Path, package: Path, base_url: str, concurrency: int = 64,
              extra: tuple[str, ...] = ()) -> RunTiming:
    """One whole-process `harness run` against the server at base_url."""
    cmd = [sys.executable, "-m", "harness", "run", str(package), "--endpoint", base_url, "--model", "instant",
           "--concurrency", str(concurrency), "--no-progress", "--json", *extra]
    server_stats(base_url)  # reset the server's counters
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        w0 = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=harness_env(workspace))
        _, status, usage = os.wait4(proc.pid, 0)  # wait4, for the child's own peak RSS
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"harness run failed ({proc.returncode}): {stderr.decode(errors='replace')[-2000:]}")
    summary = json.loads(stdout)
    stats = server_stats(base_url)
    samples = int(summary["outputs"]["samples"])
    if stats["requests"] != samples:
        raise RuntimeError(f"the server answered {stats['requests']} chat requests for {samples} samples")
    return RunTiming(wall_s=wall, samples=samples, peak_rss_mb=usage.ru_maxrss / 1024,
                     startup_s=stats["first"] - w0, generation_s=stats["last"] - stats["first"],
                     tail_s=w0 + wall - stats["last"])
