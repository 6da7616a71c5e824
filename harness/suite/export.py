"""``harness export SUITE --format FORMAT --out DIR``: every run of a verified suite in another format.

A suite record is exported run by run, with :func:`harness.interop.export.export`, after
the suite itself verifies (its signature, and every listed run's record digest and
dossier entry): a suite whose runs do not all verify exports nothing. ``DIR`` receives one
file per run, ``<package>--<model>--<run id>.<ext>``, and ``suite-export.json``, an index
naming the suite record (and its sha256) and, per file, the run it came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness._internal.files import atomic_write
from harness._internal.hashing import sha256_file
from harness.errors import HarnessError
from harness.interop.export import ExportResult, export
from harness.interop.tables import Table
from harness.signing.signers import Signer
from harness.signing.verify import Trusted
from harness.suite.verify import verify_suite

INDEX_NAME: Final = "suite-export.json"
_SUFFIX: Final = {"eval-result": ".sigstore.json", "every-eval-ever": ".json", "inspect": ".eval", "csv": ".csv",
                  "jsonl": ".jsonl"}


@dataclass(frozen=True)
class SuiteExport:
    suite: str
    record: Path
    results: tuple[ExportResult, ...]
    index: Path

    def as_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "record": str(self.record), "index": str(self.index),
                "runs": [r.as_dict() for r in self.results]}


def _plain(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:80]


def export_suite(ref: str, fmt: str, out: Path, *, trusted: Trusted | None = None, signer: Signer | None = None,
                 dossiers_dir: Path | None = None, table: Table = "samples", mirror: Path | None = None) -> SuiteExport:
    """Verify suite ``ref`` and export each of its runs as ``fmt`` into folder ``out``."""
    if fmt not in _SUFFIX:
        raise HarnessError(f"format {fmt!r} is not exported for a suite",
                           hint=f"use one of: {', '.join(_SUFFIX)} (a VSA is made for a reproduction entry)")
    checked = verify_suite(ref, trusted, dossiers_dir=dossiers_dir)
    if not checked.ok:
        first = "; ".join(str(p) for p in checked.problems[:3])
        raise HarnessError(f"suite {checked.record.name} does not verify, so nothing was exported: {first}",
                           hint=f"`harness verify {ref}` shows every problem")
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for run in checked.record.runs:
        name = f"{_plain(run.package)}--{_plain(run.model)}--{_plain(run.run_id)}{_SUFFIX[fmt]}"
        ref_run = f"{run.dossier}@{run.seq}"
        results.append(export(ref_run, fmt, out / name, trusted=trusted, signer=signer,
                              dossiers_dir=checked.dossiers, table=table, mirror=mirror))
    index = {"schema_version": 1, "suite": checked.record.name, "suite_id": checked.record.suite_id,
             "suite_record_sha256": sha256_file(checked.path), "format": fmt,
             "runs": [{"package": run.package, "model": run.model, "run_id": run.run_id,
                       "record_sha256": run.record_sha256, "files": [p.name for p in r.files]}
                      for run, r in zip(checked.record.runs, results, strict=True)]}
    atomic_write(out / INDEX_NAME, json.dumps(index, indent=2, ensure_ascii=False).encode() + b"\n")
    return SuiteExport(suite=checked.record.name, record=checked.path, results=tuple(results), index=out / INDEX_NAME)
