"""Verification of one run: signature, signer, and every digest that ties files together.

The bundle signs the digests of the record and the outputs file; the record in turn
names the outputs digest. Checking the chain in that order means a changed byte in
any of the three files is reported against the file that changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.dossier.refs import run_files_of
from harness.errors import RecordError
from harness.record import (
    OUTPUTS_NAME,
    PREDICATE_TYPE_RUN,
    RECORD_NAME,
    RunRecord,
    content_digest,
    parse_record,
    read_outputs,
)
from harness.signing.policy import resolve_trust
from harness.signing.verify import AttestationWords, Trusted, verify_attestation


@dataclass(frozen=True)
class VerifyResult:
    """A run whose signature, signer and digests all checked: its record, and who signed it."""

    record: RunRecord
    record_path: Path
    signer: str
    subjects: dict[str, str]
    policy_entry: str | None = None
    signer_details: dict[str, Any] | None = None


_RUN_WORDS = AttestationWords(
    wrong_predicate="is not a harness run record",
    wrong_predicate_hint="this bundle signs something else",
    labels={RECORD_NAME: "record", OUTPUTS_NAME: "outputs file"},
    bundle_label="signature bundle",
    restore_hint="restore it from the dossier's copy",
)


def verify_run_files(record_path: Path, bundle_path: Path, outputs_path: Path, trusted: Trusted) -> VerifyResult:
    """The bundle's signature and signer, then the record's and outputs' digests, then the
    record's own claims about the outputs (their digest and their content digest)."""
    statement = verify_attestation(bundle_path, trusted, PREDICATE_TYPE_RUN,
                                   {RECORD_NAME: record_path, OUTPUTS_NAME: outputs_path}, words=_RUN_WORDS)
    outputs_sha = statement.subjects[OUTPUTS_NAME]  # verified: the outputs file's sha256
    record = parse_record(record_path)
    if record.outputs.sha256 != outputs_sha:
        raise RecordError(f"{outputs_path}: digest does not match the record's outputs.sha256")
    lines = list(read_outputs(outputs_path))
    if len(lines) != record.outputs.samples or content_digest(lines) != record.outputs.content_sha256:
        raise RecordError(f"{outputs_path}: content does not match the record's outputs.content_sha256")
    return VerifyResult(
        record=record, record_path=record_path, signer=statement.signer, subjects=statement.subjects,
        policy_entry=statement.policy_entry, signer_details=statement.signer_details,
    )


def verify_record(ref: str | Path, trusted: Trusted | None = None, *, dossiers_dir: Path | None = None) -> VerifyResult:
    """Verify one run (a record path, a run folder or ``PACKAGE@N``): its signature, that
    ``trusted`` accepts the signer, and every digest that ties record, outputs and bundle.

    ``trusted`` defaults to the user's own trust policy or trust store (what
    ``harness verify`` uses without ``--trust-key`` / ``--trust-policy``).
    """
    record, bundle, outputs = run_files_of(str(ref), dossiers_dir)
    return verify_run_files(record, bundle, outputs, resolve_trust() if trusted is None else trusted)
