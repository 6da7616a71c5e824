"""A dossier of many signed runs, built fast, for timing verify and append at scale.

Each entry is a real signed run of a tiny package ("bench", 10 samples): its record,
bundle (signed with the workspace's local key) and outputs are written as a run would
write them, and the entry is chained onto the log. Most entries are written without
fsync, to keep building 10,000 of them in seconds; at the checkpoints the entry goes
through `Dossier.append_run`, the product's own append (lock, tail read, fsync), and
that call is timed: the figure that shows append is O(1) in the log's length.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

SAMPLES = 10


def _record(i: int, prev: str | None, outputs: bytes, content: str) -> Any:
    from harness._internal.hashing import sha256_bytes
    from harness.record import RunRecord

    return RunRecord.model_validate({
        "run_id": f"20260101T000000Z-{i:08x}", "status": "complete",
        "started_at": "2026-01-01T00:00:00.000Z", "finished_at": "2026-01-01T00:00:01.000Z", "duration_s": 1.0,
        "package": {"name": "bench", "version": "1.0.0", "seal": "a" * 64, "manifest_sha256": "b" * 64, "license": "CC0-1.0"},
        "data": [{"id": "prompts", "sha256": "c" * 64, "size": 1}],
        "lockfile": {"lockfile": "harness.txt", "sha256": "d" * 64, "matches": True, "checked": 1,
                     "mismatch_count": 0, "mismatches": []},
        "harness": {"version": "0", "commit": None, "dirty": None},
        "platform": {"python": "3.11", "implementation": "CPython", "system": "Linux", "machine": "x86_64",
                     "platform": "Linux", "executable_prefix_is_venv": True},
        "model": {"backend": "openai", "name": "instant", "path": None, "revision": None, "files": {},
                  "digest": "e" * 64},
        "generation": {"max_tokens": 32, "temperature": 0.0, "top_p": 1.0, "stop": []},
        "seeds": {"run": 1, "python": 1, "numpy": 1, "torch": 1, "order": 1, "sample_rule": "r"},
        "scorer": {"kind": "refusal", "patterns": "refusal-patterns@1.0.0", "patterns_sha256": "f" * 64},
        "outputs": {"path": "outputs.jsonl", "sha256": sha256_bytes(outputs), "content_sha256": content,
                    "samples": SAMPLES, "errors": 0},
        "metrics": [], "baselines": [], "previous_entry": prev,
    })


def build_dossier(root: Path, config_dir: Path, entries: int, checkpoints: tuple[int, ...] = ()) -> dict[int, float]:
    """Write `entries` runs into root/bench; returns {length: median seconds of 5 timed appends from there}."""
    import statistics

    from harness import signing as sign
    from harness._internal.hashing import sha256_bytes
    from harness.dossier.log import GENESIS, Dossier, Entry, FileRef
    from harness.record import (
        BUNDLE_NAME,
        OUTPUTS_NAME,
        PREDICATE_TYPE_RUN,
        RECORD_NAME,
        content_digest,
        output_line,
    )

    key = sign.load_or_create_key(config_dir)
    dossier = Dossier(root / "bench")
    dossier.root.mkdir(parents=True, exist_ok=True)
    lines = [{"id": f"p{j}", "language": "en", "category": "c", "expected": "refuse", "prompt_sha256": "f" * 64,
              "seed": j, "response": "I'm sorry, but I can't help with that.", "finish_reason": "stop",
              "verdict": "refusal", "correct": True, "error": None, "attempts": 1, "timing": {}} for j in range(SAMPLES)]
    outputs = b"".join(output_line(x) for x in lines)
    content = content_digest(lines)
    timed: dict[int, list[float]] = {}
    timed_at = {c + k: c for c in checkpoints if c + 4 <= entries for k in range(5)}
    prev, seq = GENESIS, 0
    with open(dossier.log, "ab") as log:
        for i in range(1, entries + 1):
            record = _record(i, prev if seq else None, outputs, content)
            rec_bytes = record.to_bytes()
            bundle = sign.sign_statement({RECORD_NAME: sha256_bytes(rec_bytes), OUTPUTS_NAME: sha256_bytes(outputs)},
                                         PREDICATE_TYPE_RUN, {"run_id": record.run_id}, key)
            run_dir = dossier.run_dir(record.run_id)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / RECORD_NAME).write_bytes(rec_bytes)
            (run_dir / BUNDLE_NAME).write_bytes(bundle)
            (run_dir / OUTPUTS_NAME).write_bytes(outputs)
            if i in timed_at:
                log.flush()
                t0 = time.perf_counter()
                entry = dossier.append_run(record)
                timed.setdefault(timed_at[i] - 1, []).append(time.perf_counter() - t0)
                line = entry.line()
            else:
                rel = f"runs/{record.run_id}"
                entry = Entry(seq=seq + 1, prev=prev, run_id=record.run_id, time=record.finished_at, package="bench",
                              package_version="1.0.0", seal=record.package.seal, model_digest="e" * 64,
                              status="complete",
                              record=FileRef(path=f"{rel}/{RECORD_NAME}", sha256=sha256_bytes(rec_bytes)),
                              bundle=FileRef(path=f"{rel}/{BUNDLE_NAME}", sha256=sha256_bytes(bundle)),
                              outputs=FileRef(path=f"{rel}/{OUTPUTS_NAME}", sha256=sha256_bytes(outputs)))
                line = entry.line()
                log.write(line + b"\n")
            prev, seq = sha256_bytes(line), seq + 1
    return {n: statistics.median(v) for n, v in timed.items()}
