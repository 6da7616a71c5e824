"""Verification of one run: signature, signer, and every digest that ties files together.

The bundle signs the digests of the record and the outputs file; the record in turn
names the outputs digest. Checking the chain in that order means a changed byte in
any of the three files is reported against the file that changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._internal.hashing import sha256_file
from harness.errors import RecordError, SignatureError
from harness.record import (
    BUNDLE_NAME,
    OUTPUTS_NAME,
    RECORD_NAME,
    RunRecord,
    content_digest,
    parse_record,
    read_outputs,
)
from harness.signing.sign import PREDICATE_TYPE_RUN
from harness.signing.verify import Trusted, verify_bundle


@dataclass(frozen=True)
class VerifyResult:
    record: RunRecord
    record_path: Path
    signer: str
    subjects: dict[str, str]
    policy_entry: str | None = None
    signer_details: dict[str, Any] | None = None


def verify_run_files(record_path: Path, bundle_path: Path, outputs_path: Path, trusted: Trusted) -> VerifyResult:
    for p, what in ((record_path, "record"), (bundle_path, "signature bundle"), (outputs_path, "outputs file")):
        if not p.is_file():
            raise RecordError(f"{what} {p} is missing", hint="restore it from the dossier's copy")
    try:
        statement = verify_bundle(bundle_path.read_bytes(), trusted)
    except SignatureError as e:
        raise type(e)(f"{bundle_path}: {e.message}", hint=e.hint) from None
    if statement.predicate_type != PREDICATE_TYPE_RUN:
        raise SignatureError(
            f"{bundle_path}: predicate type {statement.predicate_type!r} is not a harness run record",
            hint="this bundle signs something else",
        )
    record_sha = sha256_file(record_path)
    outputs_sha = sha256_file(outputs_path)
    if statement.subjects.get(RECORD_NAME) != record_sha:
        raise RecordError(
            f"{record_path}: sha256 {record_sha} does not match the signed digest {statement.subjects.get(RECORD_NAME)}",
            hint="the record was altered after signing",
        )
    if statement.subjects.get(OUTPUTS_NAME) != outputs_sha:
        raise RecordError(
            f"{outputs_path}: sha256 {outputs_sha} does not match the signed digest {statement.subjects.get(OUTPUTS_NAME)}",
            hint="the outputs file was altered after signing",
        )
    record = parse_record(record_path)
    if record.outputs.sha256 != outputs_sha:
        raise RecordError(f"{outputs_path}: digest does not match the record's outputs.sha256")
    lines = list(read_outputs(outputs_path))
    if len(lines) != record.outputs.samples or content_digest(lines) != record.outputs.content_sha256:
        raise RecordError(f"{outputs_path}: content does not match the record's outputs.content_sha256")
    return VerifyResult(
        record=record, record_path=record_path, signer=statement.signer, subjects=statement.subjects,
        policy_entry=getattr(statement, "policy_entry", None), signer_details=getattr(statement, "signer_details", None),
    )


def run_files(record_or_dir: Path) -> tuple[Path, Path, Path]:
    """record.json, its bundle and outputs, given the record or the run folder."""
    d = record_or_dir if record_or_dir.is_dir() else record_or_dir.parent
    record = record_or_dir if record_or_dir.is_file() else d / RECORD_NAME
    return record, d / BUNDLE_NAME, d / OUTPUTS_NAME


def verify_record(path: Path, trusted: Trusted) -> VerifyResult:
    record, bundle, outputs = run_files(path)
    return verify_run_files(record, bundle, outputs, trusted)
