"""Verifying a dossier: its hash chain, and every entry's files, signature and fields.

Each entry's fields are re-derived from the signed record or event document it points
at, so an edited entry is named even where the chain was recomputed after the edit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._internal.hashing import sha256_bytes, sha256_file
from harness.dossier.events import verify_event_files
from harness.dossier.log import GENESIS, LOG_NAME, Dossier, Entry, EventEntry, _event_fields
from harness.dossier.runs import verify_run_files
from harness.errors import DossierError, HarnessError
from harness.signing.policy import resolve_trust
from harness.signing.verify import Trusted


def verify_dossier(
    dossier: Dossier | str, trusted: Trusted | None = None, *, dossiers_dir: Path | None = None,
    expect_head: str | None = None, chain_only: bool = False,
) -> DossierReport:
    """Check the chain, then each entry's files, signature and record or event document.

    ``dossier`` is a :class:`Dossier` or a package name (under ``dossiers_dir``, default
    ``./dossiers``); ``trusted`` defaults to the user's own trust policy or trust store.
    ``chain_only`` stops at the log's own guarantees: sequence, hash chain, head, and
    that every file an entry names is there with the digest the entry gives (each
    file hashed once). It skips signatures and record contents, which cost about a
    millisecond per entry; run the full check before trusting a signer.
    """
    if isinstance(dossier, str):
        dossier = Dossier.for_package(dossier, dossiers_dir)
    if trusted is None:
        trusted = [] if chain_only else resolve_trust()
    report = DossierReport(dossier=dossier.root, chain_only=chain_only)
    if not dossier.log.exists():
        report.problems.append(Problem(None, str(dossier.log), "no log.jsonl: the dossier is empty or missing"))
        return report
    raw = dossier.log.read_bytes()
    if raw and not raw.endswith(b"\n"):
        report.problems.append(
            Problem(None, LOG_NAME, "the last line is incomplete (an append was interrupted); the next append repairs it")
        )
    try:
        parsed = dossier.parsed_lines()
    except DossierError as e:
        report.problems.append(Problem(None, LOG_NAME, e.message))
        return report
    prev = GENESIS
    root_prefix = f"{dossier.root}{os.sep}"
    run_records: dict[str, str] = {}  # record sha256 -> run id, of the runs seen so far
    line_digests: dict[str, int] = {}  # line sha256 -> seq, of the entries seen so far
    for i, (entry, line) in enumerate(parsed, 1):
        where = f"{LOG_NAME} entry {i} ({'run' if isinstance(entry, Entry) else entry.kind} {entry.ident[:12]})"
        if entry.seq != i:
            report.problems.append(Problem(i, LOG_NAME, f"{where}: sequence number {entry.seq}, expected {i} (entries deleted or reordered)"))
        if entry.prev != prev:
            report.problems.append(Problem(i, LOG_NAME, f"{where}: chain broken, prev does not match the digest of the entry before it (an entry was edited, deleted or reordered)"))
        if line != entry.line():  # a byte that does not change the parsed entry still counts
            report.problems.append(Problem(i, LOG_NAME, f"{where}: the line is not in the canonical form the harness writes (it was edited)"))
        prev = sha256_bytes(line)
        line_digests[prev] = i
        if chain_only:
            refs = (((entry.document, "document"), (entry.bundle, "bundle"), *((f, f.path) for f in entry.files))
                    if isinstance(entry, EventEntry)
                    else ((entry.record, "record"), (entry.bundle, "bundle"), (entry.outputs, "outputs")))
            for ref, what in refs:
                try:
                    actual = sha256_file(root_prefix + ref.path)  # a str join: Path costs ~20 µs a file here
                except OSError:
                    report.problems.append(Problem(i, ref.path, f"{where}: {what} file is missing"))
                    continue
                if actual != ref.sha256:
                    report.problems.append(Problem(i, ref.path, f"{where}: {what} file differs from the digest in the log"))
            continue
        if isinstance(entry, EventEntry):
            _verify_event_entry(dossier, entry, i, where, trusted, run_records, line_digests, report)
            continue
        run_records[entry.record.sha256] = entry.run_id
        try:
            result = verify_run_files(
                dossier.root / entry.record.path,
                dossier.root / entry.bundle.path,
                dossier.root / entry.outputs.path,
                trusted,
            )
        except HarnessError as e:
            report.problems.append(Problem(i, entry.record.path, f"{where}: {e.message}"))
            continue
        for ref, what in ((entry.record, "record"), (entry.bundle, "bundle"), (entry.outputs, "outputs")):
            # record and outputs were just hashed and matched the signed subjects: reuse those digests
            signed = result.subjects.get(Path(ref.path).name) if what != "bundle" else None
            actual = signed or sha256_file(dossier.root / ref.path)
            if actual != ref.sha256:
                report.problems.append(Problem(i, ref.path, f"{where}: {what} file differs from the digest in {LOG_NAME} (the file or the log entry was edited)"))
        rec = result.record
        derived = {
            "run_id": rec.run_id, "time": rec.finished_at, "package": rec.package.name,
            "package_version": rec.package.version, "seal": rec.package.seal,
            "model_digest": rec.model.digest, "status": rec.status,
        }
        for k, v in derived.items():
            if getattr(entry, k) != v:
                report.problems.append(Problem(i, LOG_NAME, f"{where}: field {k!r} does not match the signed record"))
        report.signers.append((i, entry.run_id, result.signer))
    report.entries = len(parsed)
    report.head = prev
    if expect_head and expect_head != prev:
        report.problems.append(Problem(None, LOG_NAME, f"head is {prev}, expected {expect_head} (entries were removed from the end, or added)"))
    return report


def _verify_event_entry(
    d: Dossier, entry: EventEntry, i: int, where: str, trusted: Trusted, run_records: dict[str, str],
    line_digests: dict[str, int], report: DossierReport,
) -> None:
    try:
        result = verify_event_files(d.root / entry.document.path, d.root / entry.bundle.path,
                                    [d.root / f.path for f in entry.files], trusted)
    except HarnessError as e:
        report.problems.append(Problem(i, entry.document.path, f"{where}: {e.message}"))
        return
    for ref, what in ((entry.document, "document"), (entry.bundle, "bundle"), *((f, f.path) for f in entry.files)):
        if sha256_file(d.root / ref.path) != ref.sha256:
            report.problems.append(Problem(i, ref.path, f"{where}: {what} file differs from the digest in the log"))
    doc = result.document
    for k, v in _event_fields(doc).items():
        if getattr(entry, k) != v:
            report.problems.append(Problem(i, LOG_NAME, f"{where}: field {k!r} does not match the signed {doc.kind} record"))
    target = doc.refers_to
    if target.kind == "run" and target.sha256 not in run_records:
        report.problems.append(Problem(i, entry.document.path, f"{where}: refers to a run record ({target.sha256[:12]}) "
                                       "that is not an earlier run of this dossier"))
    if target.kind == "entry" and line_digests.get(target.sha256, i) >= i:
        report.problems.append(Problem(i, entry.document.path, f"{where}: refers to an entry ({target.sha256[:12]}) "
                                       "that is not an earlier entry of this dossier"))
    report.signers.append((i, entry.id, result.signer))


@dataclass
class Problem:
    entry: int | None
    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


@dataclass
class DossierReport:
    dossier: Path
    entries: int = 0
    head: str = GENESIS
    problems: list[Problem] = field(default_factory=list)
    signers: list[tuple[int, str, str]] = field(default_factory=list)
    chain_only: bool = False  # signatures and records were not checked

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "dossier": str(self.dossier),
            "ok": self.ok,
            "signatures_checked": not self.chain_only,
            "entries": self.entries,
            "head": self.head,
            "problems": [{"entry": p.entry, "path": p.path, "what": p.what} for p in self.problems],
            "signers": [{"entry": n, "run_id": r, "signer": s} for n, r, s in self.signers],
        }
