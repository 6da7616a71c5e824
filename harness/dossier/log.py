"""The dossier: per package, an append-only, hash-chained log of signed runs.

Each line of ``log.jsonl`` is one entry in canonical JSON that carries the sha256 of
the line before it, so editing, deleting or reordering any entry breaks the chain at
a place that can be named. Every other field of an entry is re-derived from the
signed record on verification, so even the last entry cannot be edited unnoticed.

Appends take an exclusive lock and write the whole line with one ``write`` on an
``O_APPEND`` descriptor: a killed process never leaves half a line. Given a signer, an
append then signs a checkpoint over the whole log under the same lock
(:mod:`harness.dossier.checkpoint`): the RFC 9162 Merkle root of every line, which
fixes the entries and their order where the unsigned chain alone could be recomputed.
A repair never deletes an entry: a last line that only lacks its newline is completed,
and bytes that are not an entry are moved aside to ``log.jsonl.torn-<time>``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, TypeVar

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from harness._internal.files import (
    NotRegularFileError,
    OutsideRootError,
    atomic_write,
    confine,
    open_regular,
)
from harness._internal.frozen import Frozen
from harness._internal.hashing import canonical_json, sha256_bytes, sha256_file
from harness._internal.settings import dossiers_dir as default_dossiers_dir
from harness.dossier.documents import (
    BUNDLE_SUFFIX,
    BaselineSummary,
    DiagnosisSummary,
    EventRecord,
    EventSummary,
    ImportedSummary,
    ReproductionSummary,
    RescoreSummary,
    ReviewSummary,
)
from harness.dossier.review_details import AdjudicationSummary, LabelSummary
from harness.dossier.tail import TailRepair, last_line, repair_tail
from harness.errors import BadReferenceError, DossierError, HarnessError
from harness.record import BUNDLE_NAME, OUTPUTS_NAME, RECORD_NAME, RunRecord, parse_record

if TYPE_CHECKING:
    from harness.dossier.checkpoint import SignedCheckpoint
    from harness.signing.signers import Signer

_logger = logging.getLogger(__name__)
_held = threading.local()
"""The dossier roots whose lock this thread holds: the lock is re-entrant within a thread
(a commit holds it across its steps and the append inside them), exclusive across
threads and processes (each flock is on its own open file description)."""

LOG_NAME = "log.jsonl"
LOCK_NAME = ".lock"
GENESIS = "0" * 64
ENTRY_SCHEMA_VERSION: Final[Literal[1]] = 1
"""Run entries are still written as schema 1; the other kinds are schema 2 (EVENT_ENTRY_SCHEMA_VERSION)."""
EVENT_ENTRY_SCHEMA_VERSION: Final[Literal[2]] = 2


class FileRef(Frozen):
    path: str
    sha256: str

    @field_validator("path")
    @classmethod
    def _inside(cls, v: str) -> str:
        """A dossier received for audit is untrusted input: its entries may only name files
        in its own subfolders (runs/, reproductions/, ...), never an absolute path or one
        that climbs out with '..'."""
        parts = v.split("/")  # list membership, not a generator: verify checks ~3 paths per entry
        if len(parts) < 2 or "" in parts or "." in parts or ".." in parts or "\\" in v or ":" in v:
            raise ValueError(f"file path {v!r} is not inside the dossier folder")
        return v


def _entry_line(fields: dict[str, Any]) -> bytes:
    """Canonical JSON of an entry. Entries hold only strings, integers and nested objects
    of those with ASCII keys, for which sorted-key compact JSON is RFC 8785 byte for byte;
    verify re-serialises every line, so skipping canonical_json's float scan matters."""
    try:
        return json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    except (UnicodeEncodeError, ValueError):
        return canonical_json(fields)


class Entry(Frozen):
    """One line of log.jsonl, schema version 1."""

    schema_version: Literal[1] = ENTRY_SCHEMA_VERSION
    seq: int
    prev: str
    kind: Literal["run"] = "run"
    run_id: str
    time: str
    package: str
    package_version: str
    seal: str
    model_digest: str
    status: str
    record: FileRef
    bundle: FileRef
    outputs: FileRef

    def line(self) -> bytes:
        return _entry_line(self.model_dump(mode="json"))

    @property
    def ident(self) -> str:
        return self.run_id


class EventEntry(Frozen):
    """One line of log.jsonl for a signed event (reproduction, rescore, baseline, review), schema version 2.

    Every field but ``seq`` and ``prev`` is copied from the signed event document, and
    ``dossier verify`` re-derives each of them from it.
    """

    schema_version: Literal[2] = EVENT_ENTRY_SCHEMA_VERSION
    seq: int
    prev: str
    kind: Literal["reproduction", "rescore", "baseline", "review", "diagnosis", "imported", "label", "adjudication"]
    id: str
    time: str
    package: str
    package_version: str
    seal: str
    refers_to: str
    summary: EventSummary
    """The event document's summary, repeated (its type follows ``kind``)."""
    document: FileRef
    bundle: FileRef
    files: tuple[FileRef, ...] = ()

    @model_validator(mode="after")
    def _summary_of_kind(self) -> EventEntry:
        if not isinstance(self.summary, _SUMMARY_OF[self.kind]):
            raise ValueError(f"summary does not fit a {self.kind} entry")
        return self

    def line(self) -> bytes:
        return _entry_line(self.model_dump(mode="json"))

    @property
    def ident(self) -> str:
        return self.id


_SUMMARY_OF: dict[str, type[EventSummary]] = {
    "reproduction": ReproductionSummary, "rescore": RescoreSummary, "baseline": BaselineSummary,
    "review": ReviewSummary, "diagnosis": DiagnosisSummary, "imported": ImportedSummary,
    "label": LabelSummary, "adjudication": AdjudicationSummary,
}


AnyEntry = Annotated[Entry | EventEntry, Field(discriminator="kind")]
AnyEntryT = TypeVar("AnyEntryT", Entry, EventEntry)
_ENTRY = TypeAdapter(AnyEntry)


def parse_entry(raw: bytes) -> Entry | EventEntry:
    """One log line, whichever kind it is (``kind`` picks the schema)."""
    return _ENTRY.validate_json(raw)


@dataclass(frozen=True)
class Dossier:
    root: Path

    @classmethod
    def for_package(cls, package: str, base: Path | None = None) -> Dossier:
        return cls((base or default_dossiers_dir()) / package)

    @property
    def log(self) -> Path:
        return self.root / LOG_NAME

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def work_dir(self, run_id: str) -> Path:
        """Where a run in progress writes; never referenced by an entry."""
        return self.root / ".work" / run_id

    # ------------------------------------------------------------------ reading

    def entries(self) -> list[Entry | EventEntry]:
        return [e for e, _ in self.parsed_lines()]

    def runs(self) -> list[Entry]:
        return [e for e in self.entries() if isinstance(e, Entry)]

    def last_run(self) -> Entry | None:
        """The latest run entry (the chain head may be another kind of entry).

        O(1) in the log's length when the head is a run (every run reads it); otherwise
        the whole log is parsed."""
        last = self.last_entry()
        if last is None:
            return None
        if isinstance(last[0], Entry):
            return last[0]
        runs = self.runs()
        return runs[-1] if runs else None

    def entry_digest(self, seq: int) -> str:
        """sha256 of entry ``seq``'s line: what a review or an expected head refers to."""
        for e, raw in self.parsed_lines():
            if e.seq == seq:
                return sha256_bytes(raw)
        raise DossierError(f"dossier {self.root.name} has no entry {seq}")

    def parsed_lines(self) -> list[tuple[Entry | EventEntry, bytes]]:
        if not self.log.exists():
            return []
        data = _read_log(self.log)
        out = []
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for n, raw in enumerate(lines, 1):
            try:
                entry = parse_entry(raw)
            except (ValidationError, ValueError) as e:
                why = str(e).splitlines()[0]
                if isinstance(e, ValidationError) and e.errors():
                    first = e.errors()[0]
                    why = f"{'.'.join(str(x) for x in first['loc']) or 'line'}: {first['msg']}"
                raise DossierError(
                    f"{self.log} line {n} is not a valid dossier entry ({why})",
                    hint="the log was edited or damaged; restore it from a copy",
                ) from None
            out.append((entry, raw))
        return out

    def head(self) -> tuple[int, str]:
        """(seq, digest) of the last entry, reading only the tail of the log."""
        last = self.last_entry()
        return (0, GENESIS) if last is None else (last[0].seq, sha256_bytes(last[1]))

    def last_entry(self) -> tuple[Entry | EventEntry, bytes] | None:
        """The last entry and its line, reading only the tail of the log (O(1) in its length)."""
        if not self.log.exists():
            return None
        with os.fdopen(_open_log(self.log), "rb") as fh:
            last = last_line(fh)
            if last is not None:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n" and not _parses(last):
                    last = last_line(fh, len(last))  # a torn tail is not an entry: the line before it is the head
        if last is None:
            return None
        try:
            return parse_entry(last), last
        except (ValidationError, ValueError):
            raise DossierError(
                f"the last line of {self.log} is not a valid entry",
                hint="run `harness dossier verify` to see what is wrong",
            ) from None

    def resolve(self, ref: str) -> Entry:
        """A run entry by ``latest``, a sequence number, or a run-id prefix."""
        entry = self.resolve_any(ref, runs_only=True)
        assert isinstance(entry, Entry)
        return entry

    def resolve_any(self, ref: str, *, runs_only: bool = False) -> Entry | EventEntry:
        """An entry of any kind by ``latest`` (of runs, with ``runs_only``), a sequence number, or an id prefix."""
        entries = self.entries()
        if not entries:
            raise BadReferenceError(f"dossier {self.root} is empty", hint="run the package first: `harness run <package>`")
        pool = [e for e in entries if isinstance(e, Entry)] if runs_only else entries
        if ref in ("latest", "last", ""):
            if not pool:
                raise BadReferenceError(f"dossier {self.root.name} has no run entries", hint="run the package first")
            return pool[-1]
        if ref.lstrip("-").isdigit():
            n = int(ref)
            idx = n - 1 if n > 0 else len(entries) + n - 1
            if 0 <= idx < len(entries):
                if runs_only and not isinstance(entries[idx], Entry):
                    raise BadReferenceError(f"entry {entries[idx].seq} of {self.root.name} is {_a(entries[idx].kind)}, not a run",
                                       hint="`harness dossier log` lists the entries and their kinds")
                return entries[idx]
            raise BadReferenceError(f"dossier {self.root.name} has no entry {ref} (it has {len(entries)})")
        hits = [e for e in pool if e.ident.startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        raise BadReferenceError(
            f"{'no' if not hits else 'more than one'} entry of {self.root.name} matches {ref!r}",
            hint="use a sequence number, 'latest', or a longer run id prefix",
        )

    def record_of(self, entry: Entry) -> RunRecord:
        return parse_record(_confined(self.root, entry.record.path))

    def timeline(self) -> list[dict[str, Any]]:
        """Every entry with what `dossier log` shows: key metrics per run, and which runs were
        reproduced or reviewed (by later entries that name them)."""
        parsed = self.parsed_lines()
        by_record = {e.record.sha256: e.seq for e, _ in parsed if isinstance(e, Entry)}
        by_line = {sha256_bytes(raw): e.seq for e, raw in parsed}
        notes: dict[int, list[str]] = {}
        out = []
        for e, _ in parsed:
            row: dict[str, Any] = e.model_dump(mode="json")
            if isinstance(e, Entry):
                try:
                    rec = self.record_of(e)
                    row["model"] = rec.model.name
                    row["key_metrics"] = {m.metric: round(m.value, 6) for m in rec.metrics if m.group == "overall"} or {
                        f"{m.metric}[{m.group}]": round(m.value, 6) for m in rec.metrics if m.group.startswith("language:")}
                    row["samples"] = rec.outputs.samples
                    row["overrides"] = rec.overrides.model_dump(mode="json")
                    row["subset"] = rec.is_subset
                except HarnessError as err:
                    row["key_metrics"] = {}
                    row["error"] = err.message
            else:
                target = by_line.get(e.refers_to) if e.kind == "review" else by_record.get(e.refers_to)
                row["refers_to_entry"] = target
                if target is not None:
                    notes.setdefault(target, []).append(f"{_later_word(e.summary)} (#{e.seq})")
            out.append(row)
        for row in out:
            row["later"] = notes.get(row["seq"], [])
        return out

    # ------------------------------------------------------------------ writing

    def add_run(self, record: RunRecord, bundle: bytes, outputs_src: Path, *,
                checkpoint: Signer | None = None) -> Entry:
        """Store a run's files, then append the entry that points at them (and, given a
        signer, sign a checkpoint over the log)."""
        run_dir = self.run_dir(record.run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        outputs_dst = run_dir / OUTPUTS_NAME
        if outputs_src.resolve() != outputs_dst.resolve():
            os.replace(outputs_src, outputs_dst)
        atomic_write(run_dir / RECORD_NAME, record.to_bytes())
        atomic_write(run_dir / BUNDLE_NAME, bundle)
        return self.append_run(record, checkpoint=checkpoint)

    def append_run(self, record: RunRecord, *, checkpoint: Signer | None = None) -> Entry:
        """Append the entry for a run whose three files are already in ``runs/<run_id>``."""
        run_dir = self.run_dir(record.run_id)
        rel = f"runs/{record.run_id}"
        digests = {name: sha256_file(run_dir / name) for name in (RECORD_NAME, BUNDLE_NAME, OUTPUTS_NAME)}

        def make(seq: int, prev: str) -> Entry:
            return Entry(
                seq=seq,
                prev=prev,
                run_id=record.run_id,
                time=record.finished_at,
                package=record.package.name,
                package_version=record.package.version,
                seal=record.package.seal,
                model_digest=record.model.digest,
                status=record.status,
                record=FileRef(path=f"{rel}/{RECORD_NAME}", sha256=digests[RECORD_NAME]),
                bundle=FileRef(path=f"{rel}/{BUNDLE_NAME}", sha256=digests[BUNDLE_NAME]),
                outputs=FileRef(path=f"{rel}/{OUTPUTS_NAME}", sha256=digests[OUTPUTS_NAME]),
            )

        return self.append(make, checkpoint=checkpoint)

    def entry_for_run(self, run_id: str) -> Entry | None:
        """The entry of a run, if it was appended; reads the whole log (recovery only)."""
        if not self.log.exists():
            return None
        needle = f'"run_id":"{run_id}"'.encode()
        for raw in _read_log(self.log).split(b"\n"):
            if needle in raw:
                try:
                    return Entry.model_validate_json(raw)
                except (ValidationError, ValueError):
                    continue
        return None

    def event_dir(self, kind: str, event_id: str) -> Path:
        return self.root / event_folder(kind) / event_id

    def add_event(self, doc: EventRecord, bundle: bytes, files: dict[str, Path], *,
                  checkpoint: Signer | None = None) -> EventEntry:
        """Store a signed event document and its files, then append its entry (and, given a
        signer, sign a checkpoint over the log)."""
        folder = self.event_dir(doc.kind, doc.id)
        folder.mkdir(parents=True, exist_ok=True)
        refs = []
        for name, src in files.items():
            dst = folder / name
            if src.resolve() != dst.resolve():
                atomic_write(dst, src.read_bytes())
            refs.append(FileRef(path=f"{event_folder(doc.kind)}/{doc.id}/{name}", sha256=sha256_file(dst)))
        body = doc.to_bytes()
        bundle_name = doc.document_name.removesuffix(".json") + BUNDLE_SUFFIX
        atomic_write(folder / doc.document_name, body)
        atomic_write(folder / bundle_name, bundle)
        rel = f"{event_folder(doc.kind)}/{doc.id}"

        def make(seq: int, prev: str) -> EventEntry:
            return EventEntry(
                seq=seq, prev=prev, **_event_fields(doc),
                document=FileRef(path=f"{rel}/{doc.document_name}", sha256=sha256_bytes(body)),
                bundle=FileRef(path=f"{rel}/{bundle_name}", sha256=sha256_bytes(bundle)),
                files=tuple(refs),
            )

        return self.append(make, checkpoint=checkpoint)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the dossier's exclusive lock (re-entrant in one thread): appends, checkpoint
        signing, and a run's commit, which must read the head and append with nothing between."""
        held: set[str] = _held.__dict__.setdefault("roots", set())
        key = str(self.root.absolute())
        if key in held:
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            held.add(key)
            try:
                yield
            finally:
                held.discard(key)
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
        finally:
            os.close(lock_fd)

    def append(self, make: Callable[[int, str], AnyEntryT], *, checkpoint: Signer | None = None) -> AnyEntryT:
        """Append ``make(seq, prev)`` under the dossier lock, then, given a signer, sign a
        checkpoint over the whole log (a crash between the two leaves the checkpoint one entry
        behind; the next signed append or ``dossier checkpoint --sign`` covers it)."""
        with self.locked():
            fd = os.open(self.log, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                with os.fdopen(os.dup(fd), "rb") as fh:
                    self._report(repair_tail(fh, fd, self.root, _parses))
                    last = last_line(fh)
                if last is None:
                    seq, prev = 0, GENESIS
                else:
                    seq, prev = parse_entry(last).seq, sha256_bytes(last)
                entry = make(seq + 1, prev)
                payload = entry.line() + b"\n"
                written = os.write(fd, payload)
                if written != len(payload):  # pragma: no cover - regular files write fully
                    raise DossierError(f"short write to {self.log}", hint="check free disk space")
                os.fsync(fd)
            finally:
                os.close(fd)
            if checkpoint is not None:
                from harness._internal.crashpoint import crashpoint

                crashpoint("entry-appended")
                self.sign_checkpoint(checkpoint)
        return entry

    def repair_tail(self) -> TailRepair | None:
        """Repair an interrupted append now (under the lock), and say what was done."""
        if not self.log.exists():
            return None
        with self.locked():
            fd = os.open(self.log, os.O_RDWR | os.O_APPEND)
            try:
                with os.fdopen(os.dup(fd), "rb") as fh:
                    return self._report(repair_tail(fh, fd, self.root, _parses))
            finally:
                os.close(fd)

    def _report(self, repair: TailRepair | None) -> TailRepair | None:
        if repair is not None:
            _logger.warning("%s: %s", self.log, repair)
        return repair

    def sign_checkpoint(self, signer: Signer) -> SignedCheckpoint:
        """Sign a checkpoint over the whole log and store it beside ``log.jsonl`` (under the lock).

        Refused (CheckpointError) when the log does not extend the checkpoint already
        there: signing over a rewritten log would vouch for the rewrite."""
        from harness.dossier.checkpoint import resign

        with self.locked():
            self.repair_tail()
            first = self.parsed_lines()[:1]
            if not first:
                raise DossierError(f"{self.log} has no entries to sign", hint="a checkpoint follows the first entry")
            return resign(self.root, self.log, first[0][0].package, signer)


def _a(kind: str) -> str:
    """``a review``, ``an imported result`` (an imported entry is never a run: it was not run here)."""
    return "an imported result (imported, not reproduced)" if kind == "imported" else f"a {kind}"


def event_folder(kind: str) -> str:
    """The dossier folder of an event kind: its plural (``reviews``, ``diagnoses``, ``imports``)."""
    return {"diagnosis": "diagnoses", "imported": "imports"}.get(kind, f"{kind}s")


def _later_word(summary: EventSummary) -> str:
    """How an event is noted beside the entry it refers to in ``dossier log``."""
    if isinstance(summary, ReviewSummary):
        return f"reviewed by {summary.reviewer}"
    if isinstance(summary, ReproductionSummary):
        return str(summary.verdict)
    if isinstance(summary, RescoreSummary):
        return f"rescored with {summary.scorer}"
    if isinstance(summary, DiagnosisSummary):
        return "diagnosed"
    if isinstance(summary, ImportedSummary):
        return "imported"
    if isinstance(summary, LabelSummary):
        return f"{summary.labels} label{'s' if summary.labels != 1 else ''} by {', '.join(summary.reviewers)}"
    if isinstance(summary, AdjudicationSummary):
        return f"adjudicated ({summary.changed} verdicts changed, gate {summary.gate})"
    return "baselines taken from it"


def _event_fields(doc: EventRecord) -> dict[str, Any]:
    """The entry fields an event document determines (also what verification re-derives)."""
    return {"kind": doc.kind, "id": doc.id, "time": doc.time, "package": doc.package.name,
            "package_version": doc.package.version, "seal": doc.package.seal, "refers_to": doc.refers_to.sha256,
            "summary": doc.summary}


def _open_log(path: Path) -> int:
    """A descriptor of the log, refused at once (DossierError) if it is a FIFO, device or socket."""
    try:
        return open_regular(path)
    except NotRegularFileError as e:
        raise DossierError(f"{path} is a {e.kind}, not a regular file",
                           hint="a dossier's log is a plain file; something was put in its place") from None


def _read_log(path: Path) -> bytes:
    with os.fdopen(_open_log(path), "rb") as fh:
        return bytes(fh.read())


def _confined(root: Path, rel: str) -> Path:
    """``root / rel`` with symlinks resolved, refused (DossierError) if it leaves the dossier."""
    try:
        return confine(root, rel)
    except OutsideRootError:
        raise DossierError(f"{rel} leads outside the dossier {root} (through a symbolic link)",
                           hint="a received dossier may only name its own files; do not trust it") from None


def _parses(line: bytes) -> bool:
    try:
        parse_entry(line)
    except (ValidationError, ValueError):
        return False
    return True
