"""Tidy tables of a verified run: one row per sample, or one row per metric and group.

``csv`` and ``jsonl`` carry the same columns (:data:`SAMPLE_COLUMNS`,
:data:`METRIC_COLUMNS`), each row naming the run, the package and the model, so
tables of many runs concatenate without losing which row came from where. Intervals
are the record's own (``ci_method`` says which); nothing is recomputed here.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Final, Literal

from harness.interop.common import VerifiedRun

Table = Literal["samples", "metrics"]
SAMPLE_COLUMNS: Final = ("run_id", "package", "package_version", "package_seal", "model", "model_digest", "sample_id",
                         "language", "category", "expected", "verdict", "correct", "finish_reason", "error",
                         "prompt_sha256", "seed", "response")
METRIC_COLUMNS: Final = ("run_id", "package", "package_version", "package_seal", "model", "model_digest", "metric",
                         "group", "value", "ci_low", "ci_high", "ci_method", "n", "successes", "baseline_expected",
                         "baseline_tolerance", "baseline_verdict", "subset")


def rows(run: VerifiedRun, table: Table) -> list[dict[str, Any]]:
    """The rows of ``table``, each a dict over that table's columns (None where empty)."""
    rec = run.record
    common = {"run_id": rec.run_id, "package": rec.package.name, "package_version": rec.package.version,
              "package_seal": rec.package.seal, "model": rec.model.name, "model_digest": rec.model.digest}
    if table == "samples":
        keys = {"sample_id": "id", "language": "language", "category": "category", "expected": "expected",
                "verdict": "verdict", "correct": "correct", "finish_reason": "finish_reason", "error": "error",
                "prompt_sha256": "prompt_sha256", "seed": "seed", "response": "response"}
        return [{**common, **{col: line.get(key) for col, key in keys.items()}} for line in run.lines]
    baselines = {(b.metric, b.group): b for b in rec.baselines}
    out = []
    for m in rec.metrics:
        b = baselines.get((m.metric, m.group))
        out.append({**common, "metric": m.metric, "group": m.group, "value": m.value, "ci_low": m.ci_low,
                    "ci_high": m.ci_high, "ci_method": m.ci_method, "n": m.n, "successes": m.successes,
                    "baseline_expected": b.expected if b else None, "baseline_tolerance": b.tolerance if b else None,
                    "baseline_verdict": b.word if b else None, "subset": rec.is_subset})
    return out


def to_csv(table_rows: list[dict[str, Any]], table: Table) -> bytes:
    """RFC 4180 CSV with a header; empty cells for None, ``true``/``false`` for booleans."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=SAMPLE_COLUMNS if table == "samples" else METRIC_COLUMNS,
                            lineterminator="\r\n")
    writer.writeheader()
    for row in table_rows:
        writer.writerow({k: ("" if v is None else str(v).lower() if isinstance(v, bool) else v) for k, v in row.items()})
    return buf.getvalue().encode("utf-8")


def to_jsonl(table_rows: list[dict[str, Any]]) -> bytes:
    """One JSON object per line, keys in column order, UTF-8 kept as is."""
    return b"".join(json.dumps(r, ensure_ascii=False, allow_nan=False).encode() + b"\n" for r in table_rows)
