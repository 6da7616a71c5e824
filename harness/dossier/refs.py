"""One way to name a run: a ``record.json`` path, a run folder, or ``PACKAGE@N``.

``N`` is a sequence number, ``latest`` (the default) or a run id prefix. Every command
that takes a run (verify, diff, reproduce, rescore, baseline update, approve) resolves
it here, so a reference means the same thing and fails the same way everywhere.
"""

from __future__ import annotations

from pathlib import Path

from harness._internal.hashing import sha256_file
from harness.dossier.log import Dossier, Entry
from harness.errors import DossierError, HarnessError
from harness.record import BUNDLE_NAME, OUTPUTS_NAME, RECORD_NAME

_REF_HINT = "give a record.json path, or PACKAGE@N (N: sequence number, 'latest' or a run id prefix)"


def run_files(record_or_dir: Path) -> tuple[Path, Path, Path]:
    """record.json, its bundle and outputs, given the record or the run folder."""
    d = record_or_dir if record_or_dir.is_dir() else record_or_dir.parent
    record = record_or_dir if record_or_dir.is_file() else d / RECORD_NAME
    return record, d / BUNDLE_NAME, d / OUTPUTS_NAME


def split_ref(ref: str) -> tuple[str, str]:
    """``PACKAGE@N`` as (package, N); N is ``latest`` when not given."""
    name, _, which = ref.partition("@")
    return name, which or "latest"


def dossier_named(ref: str, dossiers: Path | None = None) -> Dossier:
    """The dossier of ``PACKAGE[@N]``; refused (bad input) when it has no log."""
    name, _ = split_ref(ref)
    dossier = Dossier.for_package(name, dossiers)
    if not dossier.log.exists():
        raise HarnessError(
            f"{ref!r} is neither a record file nor a dossier entry (no dossier at {dossier.root})",
            hint=_REF_HINT,
        )
    return dossier


def locate(ref: str, dossiers: Path | None = None) -> tuple[Dossier, Entry]:
    """The dossier and run entry of ``ref``; a record path must be one of its dossier's entries."""
    p = Path(ref)
    if p.exists():
        record = p / RECORD_NAME if p.is_dir() else p
        root = record.resolve().parent.parent.parent  # <dossier>/runs/<run_id>/record.json
        dossier = Dossier(root)
        if not dossier.log.exists():
            raise DossierError(
                f"{record} does not sit in a dossier (no {dossier.log})",
                hint="use a run from its dossier (dossiers/<package>/runs/<run_id>/record.json or PACKAGE@N)",
            )
        digest = sha256_file(record)
        hits = [e for e in dossier.runs() if e.record.sha256 == digest]
        if not hits:
            raise DossierError(
                f"{record} is not the record of any entry of the dossier {dossier.root}",
                hint="the record was altered, or copied in from elsewhere; use the dossier's own copy",
            )
        return dossier, hits[-1]
    dossier = dossier_named(ref, dossiers)
    return dossier, dossier.resolve(split_ref(ref)[1])


def run_files_of(ref: str, dossiers: Path | None = None) -> tuple[Path, Path, Path]:
    """(record, bundle, outputs) of ``ref``; a record path need not sit in a dossier."""
    p = Path(ref)
    if p.exists():
        return run_files(p)
    dossier = dossier_named(ref, dossiers)
    entry = dossier.resolve(split_ref(ref)[1])
    return dossier.root / entry.record.path, dossier.root / entry.bundle.path, dossier.root / entry.outputs.path
