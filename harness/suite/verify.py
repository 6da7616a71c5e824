"""Verifying a suite record: its signature, then every run it lists, then their dossiers.

A suite's verdict is only as good as the runs under it, so ``harness verify`` on a suite
record checks, in order: the bundle's signature and signer (the predicate type must be a
suite record's) and the record's digest; that the signed predicate agrees with the
record; then for every listed run, that its package's dossier has the named entry, that
the entry names the run and the record digest the suite lists, and that the run's own
files verify (signature, signer, record and outputs digests); and finally each dossier
involved as a whole (hash chain, signed checkpoint, every signature). Problems with runs
are collected, each with its kind, so one report names everything that is wrong.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._internal.files import sha256_regular
from harness.dossier.log import Dossier, Entry
from harness.dossier.refs import entry_file
from harness.dossier.runs import verify_run_files
from harness.dossier.verify import verify_dossier
from harness.errors import (
    BadReferenceError,
    HarnessError,
    RecordError,
    SignatureError,
    SignatureFailure,
)
from harness.record import BUNDLE_NAME, OUTPUTS_NAME
from harness.signing.policy import resolve_trust
from harness.signing.verify import AttestationWords, Trusted, verify_attestation
from harness.suite.record import (
    PREDICATE_TYPE_SUITE,
    SUITE_BUNDLE_NAME,
    SUITE_RECORD_NAME,
    SUITES_FOLDER,
    SuiteRecord,
    SuiteRun,
    parse_suite_record,
    suites_root,
)

SUITE_REF_PREFIX = "suite:"
_WORDS = AttestationWords(
    wrong_predicate="is not a harness suite record", wrong_predicate_hint="this bundle signs something else",
    labels={SUITE_RECORD_NAME: "suite record"}, bundle_label="signature bundle",
    restore_hint="restore it from the dossiers' copy")


class RunProblemKind(enum.StrEnum):
    """Why a run a suite record lists does not check out."""

    NO_DOSSIER = "no-dossier"
    NO_ENTRY = "no-entry"
    """The dossier has no entry with the listed sequence number."""
    WRONG_RUN = "wrong-run"
    """The entry names another run, or another record digest, than the suite lists."""
    RUN_INVALID = "run-invalid"
    """The run's own files do not verify (signature, signer, digests)."""
    DOSSIER_INVALID = "dossier-invalid"
    """The package's dossier does not verify as a whole."""


@dataclass(frozen=True)
class RunProblem:
    kind: RunProblemKind
    package: str
    model: str
    message: str

    def __str__(self) -> str:
        return f"{self.package} x {self.model}: {self.message}"


@dataclass
class SuiteVerification:
    """A suite record whose signature verified, and what its runs and dossiers showed."""

    record: SuiteRecord
    path: Path
    signer: str
    dossiers: Path
    runs_verified: list[SuiteRun] = field(default_factory=list)
    problems: list[RunProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        r = self.record
        return {"ok": self.ok, "kind": "suite", "suite_record": str(self.path), "suite_id": r.suite_id,
                "name": r.name, "signer": self.signer, "gate": str(r.gate.verdict),
                "runs": [{"package": x.package, "model": x.model, "run_id": x.run_id, "seq": x.seq,
                          "record_sha256": x.record_sha256, "verified": x in self.runs_verified} for x in r.runs],
                "problems": [{"kind": str(p.kind), "package": p.package, "model": p.model, "message": p.message}
                             for p in self.problems]}


def is_suite_ref(ref: str) -> bool:
    """Whether ``ref`` names a suite record: ``suite:NAME[@ID]``, a ``suite.json``, or a folder holding one."""
    if ref.startswith(SUITE_REF_PREFIX):
        return True
    p = Path(ref)
    return p.name == SUITE_RECORD_NAME or (p.is_dir() and (p / SUITE_RECORD_NAME).is_file())


def locate_suite(ref: str, dossiers: Path | None = None) -> Path:
    """The ``suite.json`` that ``ref`` names; ``suite:NAME`` is the latest record of that suite."""
    if not ref.startswith(SUITE_REF_PREFIX):
        p = Path(ref)
        return p / SUITE_RECORD_NAME if p.is_dir() else p
    from harness._internal.settings import dossiers_dir

    name, _, which = ref[len(SUITE_REF_PREFIX):].partition("@")
    folder = suites_root(dossiers or dossiers_dir()) / name
    ids = sorted(p.name for p in folder.iterdir() if (p / SUITE_RECORD_NAME).is_file()) if folder.is_dir() else []
    hits = [i for i in ids if i.startswith(which)] if which and which != "latest" else ids[-1:]
    if len(hits) != 1:
        raise BadReferenceError(f"{'no' if not hits else 'more than one'} suite record matches {ref!r} (in {folder})",
                                hint="run the suite first (`harness suite run FILE`), or give a longer id prefix")
    return folder / hits[0] / SUITE_RECORD_NAME


def dossiers_of(record_path: Path) -> Path:
    """The dossiers folder a suite record belongs to: ``<dossiers>/_suites/<suite>/<id>/suite.json``."""
    root = record_path.resolve().parent.parent.parent
    if root.name != SUITES_FOLDER:
        raise RecordError(f"{record_path} is not inside a dossiers folder's {SUITES_FOLDER}/<suite>/<id>/",
                          hint="pass --dossiers DIR: the dossiers folder that holds its runs")
    return root.parent


def verify_suite_signature(path: Path, trusted: Trusted) -> tuple[SuiteRecord, str]:
    """The suite bundle's signature, signer, predicate type and the record's digest, then
    that the signed predicate says what the record says."""
    statement = verify_attestation(path.parent / SUITE_BUNDLE_NAME, trusted, PREDICATE_TYPE_SUITE,
                                   {SUITE_RECORD_NAME: path}, words=_WORDS)
    record = parse_suite_record(path)
    if statement.predicate != record.predicate():
        raise SignatureError(f"{path}: the signed predicate does not say what the suite record says "
                             "(suite id, name, gate verdict or the runs' record digests differ)",
                             hint="the signer signed one story and wrote another; do not trust this record",
                             reason=SignatureFailure.WRONG_PREDICATE)
    return record, statement.signer


def _check_run(run: SuiteRun, dossiers: Path, trusted: Trusted) -> RunProblem | None:
    def problem(kind: RunProblemKind, message: str) -> RunProblem:
        return RunProblem(kind, run.package, run.model, message)

    dossier = Dossier.for_package(run.dossier, dossiers)
    if run.dossier != run.package or not dossier.log.is_file():
        return problem(RunProblemKind.NO_DOSSIER, f"no dossier {run.dossier!r} at {dossier.root}")
    entry = next((e for e in dossier.entries() if e.seq == run.seq), None)
    if not isinstance(entry, Entry):
        return problem(RunProblemKind.NO_ENTRY, f"the dossier {run.dossier} has no run entry {run.seq}")
    if entry.run_id != run.run_id or entry.record.sha256 != run.record_sha256:
        return problem(RunProblemKind.WRONG_RUN,
                       f"entry {run.seq} of {run.dossier} is run {entry.run_id} with record {entry.record.sha256[:12]}, "
                       f"the suite lists run {run.run_id} with record {run.record_sha256[:12]}")
    try:
        record_path = entry_file(dossier.root, entry.record.path)
        folder = record_path.parent
        if sha256_regular(record_path) != run.record_sha256:
            return problem(RunProblemKind.WRONG_RUN, f"{record_path}: its sha256 is not the digest the suite lists")
        res = verify_run_files(record_path, folder / BUNDLE_NAME, folder / OUTPUTS_NAME, trusted)
    except (HarnessError, OSError) as e:
        return problem(RunProblemKind.RUN_INVALID, getattr(e, "message", str(e)))
    if res.record.run_id != run.run_id or res.record.package.name != run.package:
        return problem(RunProblemKind.WRONG_RUN, f"{record_path} is run {res.record.run_id} of {res.record.package.name}")
    return None


def verify_suite(ref: str | Path, trusted: Trusted | None = None, *, dossiers_dir: Path | None = None,
                 whole_dossiers: bool = True) -> SuiteVerification:
    """Verify the suite record ``ref`` and every run it lists (see the module docstring).

    The suite's own signature failing raises (nothing under it can be trusted); problems
    with listed runs and their dossiers are collected in the result (``ok`` is False).
    """
    trust = resolve_trust() if trusted is None else trusted
    path = locate_suite(str(ref), dossiers_dir)
    record, signer = verify_suite_signature(path, trust)
    dossiers = dossiers_dir or dossiers_of(path)
    out = SuiteVerification(record=record, path=path, signer=signer, dossiers=dossiers)
    for run in record.runs:
        problem = _check_run(run, dossiers, trust)
        if problem is None:
            out.runs_verified.append(run)
        else:
            out.problems.append(problem)
    if whole_dossiers:
        for name in sorted({r.dossier for r in out.runs_verified}):
            report = verify_dossier(Dossier.for_package(name, dossiers), trust)
            if not report.ok:
                first = "; ".join(str(p) for p in report.problems[:3])
                run = next(r for r in out.runs_verified if r.dossier == name)
                out.problems.append(RunProblem(RunProblemKind.DOSSIER_INVALID, run.package, run.model,
                                               f"the dossier {name} does not verify: {first}"))
    return out
