"""Verification of one run: signature, signer, and every digest that ties files together.

The bundle signs the digests of the record and the outputs file; the record in turn
names the outputs digest. Checking the chain in that order means a changed byte in
any of the three files is reported against the file that changed.

A run folder may come from someone else, so every file is opened only if it is a
regular file (a FIFO, device or socket is refused at once, not waited on), a path an
entry names must stay inside the dossier once symlinks are resolved
(:func:`entry_file`), and the signed predicate must say what ``record.json`` says
(:func:`predicate_disagreements`): a statement and a record that disagree are two
stories under one signature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._internal.files import NotRegularFileError, open_regular, sha256_regular
from harness.dossier.refs import entry_file, run_files_of
from harness.errors import DossierError, RecordError
from harness.record import (
    OUTPUTS_NAME,
    PREDICATE_TYPE_RUN,
    RECORD_NAME,
    RunRecord,
    content_digest,
    parse_record,
    read_outputs,
)
from harness.signing.policy import PackageStatus, TrustPolicy, resolve_trust
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
    package_status: PackageStatus = PackageStatus.UNPINNED
    """Whether the run's package is the official one (a seal the trust policy pins for its name)."""


_RUN_WORDS = AttestationWords(
    wrong_predicate="is not a harness run record",
    wrong_predicate_hint="this bundle signs something else",
    labels={RECORD_NAME: "record", OUTPUTS_NAME: "outputs file"},
    bundle_label="signature bundle",
    restore_hint="restore it from the dossier's copy",
)


PREDICATE_FIELDS: dict[str, Any] = {
    "run_id": lambda r: r.run_id,
    "package": lambda r: r.package.name,
    "version": lambda r: r.package.version,
    "seal": lambda r: r.package.seal,
    "model_digest": lambda r: r.model.digest,
    "outputs_content_sha256": lambda r: r.outputs.content_sha256,
}
"""The run predicate's fields (what ``harness run`` signs beside the subjects) and the
record field each must equal. A predicate may omit some (older signers wrote fewer);
one it carries must agree."""


def predicate_disagreements(predicate: dict[str, Any], record: RunRecord) -> list[str]:
    """The predicate fields whose signed value is not the record's, in words."""
    out = []
    for name, of in PREDICATE_FIELDS.items():
        if name in predicate and predicate[name] != of(record):
            out.append(f"the signed predicate's {name} is {predicate[name]!r}, but record.json says {of(record)!r}")
    return out


def require_regular(*paths: Path) -> None:
    """Refuse at once (RecordError) any path that exists but is not a regular file."""
    for path in paths:
        try:
            fd = open_regular(path)
        except NotRegularFileError as e:
            raise RecordError(f"{path} is a {e.kind}, not a regular file",
                              hint="a run's files are plain files; something was put in their place") from None
        except OSError:
            continue  # missing or unreadable: the verifier names it in its own words
        os.close(fd)


def entry_file_digest(root: Path, rel: str) -> str:
    """sha256 of a dossier file, confined (:func:`entry_file`) and read only if it is a
    regular file; DossierError for a file outside, a FIFO, device or socket; OSError if missing."""
    path = entry_file(root, rel)
    try:
        return sha256_regular(path)
    except NotRegularFileError as e:
        raise DossierError(f"{rel} is a {e.kind}, not a regular file",
                           hint="a dossier holds plain files only; something was put in this one's place") from None


def entry_files_problem(root: Path, rels: list[str]) -> str | None:
    """Why the files an entry names cannot be read safely (outside the dossier, not regular), or None."""
    for rel in rels:
        try:
            path = entry_file(root, rel)
            require_regular(path)
        except (DossierError, RecordError) as e:
            return e.message
    return None


def verify_run_files(record_path: Path, bundle_path: Path, outputs_path: Path, trusted: Trusted) -> VerifyResult:
    """The bundle's signature and signer, then the record's and outputs' digests, then the
    record's own claims about the outputs (their digest and their content digest), and
    that the signed predicate agrees with the record."""
    require_regular(record_path, bundle_path, outputs_path)
    statement = verify_attestation(bundle_path, trusted, PREDICATE_TYPE_RUN,
                                   {RECORD_NAME: record_path, OUTPUTS_NAME: outputs_path}, words=_RUN_WORDS)
    outputs_sha = statement.subjects[OUTPUTS_NAME]  # verified: the outputs file's sha256
    record = parse_record(record_path)
    if record.outputs.sha256 != outputs_sha:
        raise RecordError(f"{outputs_path}: digest does not match the record's outputs.sha256")
    contradictions = predicate_disagreements(statement.predicate, record)
    if contradictions:
        raise RecordError(f"{record_path}: " + "; ".join(contradictions),
                          hint="the signer signed one story and wrote another; do not trust this record")
    lines = list(read_outputs(outputs_path))
    if len(lines) != record.outputs.samples or content_digest(lines) != record.outputs.content_sha256:
        raise RecordError(f"{outputs_path}: content does not match the record's outputs.content_sha256")
    return VerifyResult(
        record=record, record_path=record_path, signer=statement.signer, subjects=statement.subjects,
        policy_entry=statement.policy_entry, signer_details=statement.signer_details,
        package_status=package_status_of(record, trusted),
    )


def package_status_of(record: RunRecord, trusted: Trusted) -> PackageStatus:
    """Whether ``record``'s package is official under ``trusted`` (a bare key list pins no package)."""
    if isinstance(trusted, TrustPolicy):
        return trusted.package_status(record.package.name, record.package.seal)
    return PackageStatus.UNPINNED


PACKAGE_STATUS_WORDS = {
    PackageStatus.OFFICIAL: "the official package (its seal is pinned in the trust policy)",
    PackageStatus.NOT_OFFICIAL: "NOT the official package (the trust policy pins another seal for this name)",
    PackageStatus.UNPINNED: "official status unknown (the trust policy pins no seal for this package)",
}
"""How each status is shown in text output."""


def verify_record(ref: str | Path, trusted: Trusted | None = None, *, dossiers_dir: Path | None = None) -> VerifyResult:
    """Verify one run (a record path, a run folder or ``PACKAGE@N``): its signature, that
    ``trusted`` accepts the signer, and every digest that ties record, outputs and bundle.

    ``trusted`` defaults to the user's own trust policy or trust store (what
    ``harness verify`` uses without ``--trust-key`` / ``--trust-policy``).
    """
    record, bundle, outputs = run_files_of(str(ref), dossiers_dir)  # confined to their dossier
    return verify_run_files(record, bundle, outputs, resolve_trust() if trusted is None else trusted)
