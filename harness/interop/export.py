"""``harness export REF --format FORMAT --out FILE``: one verified run (or reproduction) in another tool's format.

Every format starts from :func:`harness.interop.common.load_verified` (or, for ``vsa``,
from a verified reproduction event and both runs it names): nothing unverified leaves.
Signed formats (``eval-result``, ``vsa``) are signed with the signer given (the local key
by default), as a Sigstore bundle written to ``FILE``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.interop.common import EXPORT_FORMATS, VerifiedRun, load_verified, write_out
from harness.interop.tables import Table
from harness.signing.signers import Signer
from harness.signing.verify import Trusted


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote, and from which verified run."""

    format: str
    files: tuple[Path, ...]
    run_id: str
    package: str
    record_signer: str
    """Who signed the run record that was verified before exporting."""
    key_created: Path | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "files": [str(p) for p in self.files], "run_id": self.run_id,
                "package": self.package, "record_signer": self.record_signer,
                "key_created": str(self.key_created) if self.key_created else None, **self.details}


def export(ref: str | Path, fmt: str, out: Path, *, trusted: Trusted | None = None, signer: Signer | None = None,
           dossiers_dir: Path | None = None, table: Table = "samples", mirror: Path | None = None) -> ExportResult:
    """Export ``ref`` as ``fmt`` into ``out`` (``every-eval-ever`` also writes ``<out stem>.samples.jsonl``;
    ``inspect`` needs inspect-ai installed and a name ending in ``.eval``)."""
    if fmt not in EXPORT_FORMATS:
        raise HarnessError(f"unknown export format {fmt!r}", hint=f"use one of: {', '.join(EXPORT_FORMATS)}")
    if fmt == "vsa":
        from harness.interop.vsa import sign_vsa

        run, signed = sign_vsa(str(ref), trusted, signer, dossiers_dir=dossiers_dir)
        return _result(fmt, (write_out(out, signed.bundle),), run, signed.key_created)
    run = load_verified(ref, trusted, dossiers_dir=dossiers_dir)
    if fmt == "eval-result":
        from harness.interop.eval_result import sign_eval_result

        signed = sign_eval_result(run, signer)
        return _result(fmt, (write_out(out, signed.bundle),), run, signed.key_created)
    if fmt == "every-eval-ever":
        import json

        from harness.interop.eee import aggregate, instance_lines, instances

        doc = json.dumps(aggregate(run), ensure_ascii=False, indent=2, allow_nan=False).encode() + b"\n"
        items = instances(run, mirror=mirror)
        samples = out.with_name(f"{out.stem}.samples.jsonl")
        return _result(fmt, (write_out(out, doc), write_out(samples, instance_lines(items))), run, None,
                       prompts=sum(1 for i in items if i["input"]["raw"]))
    if fmt == "inspect":
        from harness.interop.inspect_log import write_inspect

        return _result(fmt, (write_inspect(run, out, mirror=mirror),), run, None)
    from harness.interop.tables import rows, to_csv, to_jsonl

    table_rows = rows(run, table)
    data = to_csv(table_rows, table) if fmt == "csv" else to_jsonl(table_rows)
    return _result(fmt, (write_out(out, data),), run, None, table=table, rows=len(table_rows))


def _result(fmt: str, files: tuple[Path, ...], run: VerifiedRun, key_created: Path | None,
            **details: Any) -> ExportResult:
    return ExportResult(format=fmt, files=files, run_id=run.record.run_id, package=run.record.package.name,
                        record_signer=run.verified.signer, key_created=key_created, details=details)
