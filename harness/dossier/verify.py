"""Verifying a dossier: its hash chain, its signed checkpoint, and every entry's files, signature and fields.

Each entry's fields are re-derived from the signed record or event document it points
at, so an edited entry is named even where the chain was recomputed after the edit.
The chain itself is unsigned; what fixes the entries, their number and their order is
the signed checkpoint (the RFC 9162 Merkle root of every line), which must cover the
whole log, and, against a keeper who can sign a rewritten log, the checkpoint this
verifier remembers from an earlier check (or one published elsewhere), from which the
log must have only grown (an RFC 9162 consistency proof).

Every problem carries a :class:`ProblemKind`, so callers branch on the kind, never on words.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._internal import merkle
from harness._internal.files import read_regular
from harness._internal.hashing import sha256_bytes
from harness.dossier.checkpoint import (
    CHECKPOINT_NAME,
    Checkpoint,
    TreeHead,
    VerifiedCheckpoint,
    head_of,
    parse_checkpoint,
    read_stored,
    verify_checkpoint,
)
from harness.dossier.documents import AdjudicationRecord, EventRecord, LabelRecord
from harness.dossier.events import verify_event_files
from harness.dossier.log import (
    GENESIS,
    LOG_NAME,
    Dossier,
    Entry,
    EventEntry,
    _event_fields,
    parse_entry,
)
from harness.dossier.runs import entry_file_digest, entry_files_problem, verify_run_files
from harness.dossier.witness import CheckpointMemory, check_consistent
from harness.errors import CheckpointError, DossierError, HarnessError
from harness.signing.policy import resolve_trust
from harness.signing.verify import Trusted


class ProblemKind(enum.StrEnum):
    """What kind of thing is wrong (or, for warnings, worth knowing) about a dossier."""

    NO_LOG = "no-log"
    TORN_TAIL = "torn-tail"
    """The log ends in bytes that are not an entry (an interrupted append)."""
    MISSING_NEWLINE = "missing-newline"
    """Warning: the last entry is whole but lacks its newline; the next append completes it."""
    MALFORMED_ENTRY = "malformed-entry"
    SEQUENCE = "sequence"
    CHAIN = "chain"
    NOT_CANONICAL = "not-canonical"
    FILE_MISSING = "file-missing"
    FILE_DIGEST = "file-digest"
    UNSAFE_FILE = "unsafe-file"
    """A file an entry names lies outside the dossier or is not a regular file."""
    SIGNATURE = "signature"
    """A record's or event's signature, signer or signed digests fail."""
    FIELD_MISMATCH = "field-mismatch"
    REFERENCE = "reference"
    """An event refers to something that is not an earlier entry of this dossier."""
    FOREIGN_PACKAGE = "foreign-package"
    """An entry (or its signed record) is of another package than the dossier."""
    DUPLICATE = "duplicate"
    """A run, record or event appears twice (a replayed entry)."""
    PREVIOUS_ENTRY = "previous-entry"
    """A record's signed ``previous_entry`` names no earlier entry of this log."""
    PREVIOUS_ENTRY_OLDER = "previous-entry-older"
    """Warning: a record names an older head than the entry just before it (made concurrently
    by an older harness, or built by hand); the checkpoint still fixes its position."""
    EXPECTED_HEAD = "expected-head"
    NO_CHECKPOINT = "no-checkpoint"
    """No signed checkpoint: a dossier from before checkpoints, until one is signed."""
    CHECKPOINT_INVALID = "checkpoint-invalid"
    """The checkpoint is malformed, or not validly signed by a trusted signer."""
    CHECKPOINT_STALE = "checkpoint-stale"
    """The checkpoint covers only the first entries (an append interrupted before signing)."""
    CHECKPOINT_MISMATCH = "checkpoint-mismatch"
    """The log is not the one the checkpoint signed (entries changed, removed, reordered)."""
    NOT_CONSISTENT = "not-consistent"
    """The log does not extend a checkpoint verified before, or the published one: truncated or forked."""
    NEW_ORIGIN = "new-origin"
    """Warning: this verifier saw a dossier of this package with another first entry before."""


@dataclass
class Problem:
    entry: int | None
    path: str
    what: str
    kind: ProblemKind
    hint: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"

    def as_dict(self) -> dict[str, Any]:
        return {"entry": self.entry, "path": self.path, "what": self.what, "kind": str(self.kind), "hint": self.hint}


def verify_dossier(
    dossier: Dossier | str, trusted: Trusted | None = None, *, dossiers_dir: Path | None = None,
    expect_head: str | None = None, chain_only: bool = False, checkpoint: Path | bytes | None = None,
    memory: CheckpointMemory | None = None, remember: bool = True,
) -> DossierReport:
    """Check the chain, each entry's files, signature and record or event document, and the checkpoint.

    ``dossier`` is a :class:`Dossier` or a package name (under ``dossiers_dir``, default
    ``./dossiers``; every entry must then be of that package); ``trusted`` defaults to the
    user's own trust policy or trust store, and decides the checkpoint's signer as it
    decides the records'. The checkpoint must be signed by a trusted signer and cover the
    whole log. The log must extend the checkpoint ``memory`` (default: the user's
    remembered checkpoints) holds for it, and ``checkpoint`` (a published checkpoint, a
    path or its bytes) if given; after a fully successful check the current checkpoint is
    remembered (``remember=False`` leaves the memory alone).

    ``chain_only`` stops at the log's own guarantees: sequence, hash chain, head, that the
    checkpoint's tree head matches the log, and that every file an entry names is there
    with the digest the entry gives (each file hashed once). It skips signatures (of
    entries and checkpoint) and record contents, which cost about a millisecond per
    entry, and the remembered checkpoint; run the full check before trusting a signer.
    """
    package = dossier if isinstance(dossier, str) else None
    if isinstance(dossier, str):
        dossier = Dossier.for_package(dossier, dossiers_dir)
    if trusted is None:
        trusted = [] if chain_only else resolve_trust()
    report = DossierReport(dossier=dossier.root, chain_only=chain_only)
    try:
        raw = read_regular(dossier.log)
    except FileNotFoundError:
        report.problems.append(Problem(None, str(dossier.log), "no log.jsonl: the dossier is empty or missing",
                                       ProblemKind.NO_LOG))
        return report
    except OSError as e:
        report.problems.append(Problem(None, LOG_NAME, f"cannot read the log: {e}", ProblemKind.UNSAFE_FILE))
        return report
    lines = raw.split(b"\n")
    tail = lines.pop()
    if tail:
        try:
            parse_entry(tail)
            lines.append(tail)
            report.warnings.append(Problem(None, LOG_NAME, "the last entry lacks its final newline (the file was "
                                           "copied by a tool that strips it); the next append adds it",
                                           ProblemKind.MISSING_NEWLINE))
        except ValueError:
            report.problems.append(Problem(None, LOG_NAME, f"the log ends in {len(tail)} bytes that are not an entry "
                                           "(an append was interrupted); the next append moves them aside",
                                           ProblemKind.TORN_TAIL))
    parsed = []
    for n, line in enumerate(lines, 1):
        try:
            parsed.append((parse_entry(line), line))
        except ValueError as e:
            why = str(e).splitlines()[0]
            errors = getattr(e, "errors", None)
            if callable(errors) and errors():
                first = errors()[0]
                why = f"{'.'.join(str(x) for x in first['loc']) or 'line'}: {first['msg']}"
            report.problems.append(Problem(n, LOG_NAME, f"{dossier.log} line {n} is not a valid dossier entry ({why})",
                                           ProblemKind.MALFORMED_ENTRY, "the log was edited or damaged; restore it "
                                           "from a copy"))
            return report
    _Entries(dossier, trusted, chain_only, package, report).check(parsed)
    leaves = [merkle.leaf_hash(line) for line in lines]
    report.entries = len(parsed)
    report.head = sha256_bytes(lines[-1]) if lines else GENESIS
    if lines:
        _check_checkpoints(dossier, lines, parsed[0][0].package, leaves, trusted, chain_only, checkpoint, memory,
                           remember, report)
    if expect_head and expect_head != report.head:
        report.problems.append(Problem(None, LOG_NAME, f"head is {report.head}, expected {expect_head} (entries were "
                                       "removed from the end, or added)", ProblemKind.EXPECTED_HEAD))
    return report


@dataclass
class _Entries:
    """One pass over the entries: chain, files, signatures, and what binds each to this dossier."""

    dossier: Dossier
    trusted: Trusted
    chain_only: bool
    package: str | None
    report: DossierReport
    run_records: dict[str, str] = field(default_factory=dict)  # record sha256 -> run id, runs seen so far
    line_digests: dict[str, int] = field(default_factory=dict)  # line sha256 -> seq, entries seen so far
    idents: set[str] = field(default_factory=set)
    kinds: dict[str, str] = field(default_factory=dict)  # line sha256 -> entry kind, entries seen so far

    def problem(self, i: int | None, path: str, what: str, kind: ProblemKind, hint: str | None = None) -> None:
        self.report.problems.append(Problem(i, path, what, kind, hint))

    def check(self, parsed: list[tuple[Entry | EventEntry, bytes]]) -> None:
        prev = GENESIS
        for i, (entry, line) in enumerate(parsed, 1):
            where = f"{LOG_NAME} entry {i} ({'run' if isinstance(entry, Entry) else entry.kind} {entry.ident[:12]})"
            if entry.seq != i:
                self.problem(i, LOG_NAME, f"{where}: sequence number {entry.seq}, expected {i} (entries deleted or "
                             "reordered)", ProblemKind.SEQUENCE)
            if entry.prev != prev:
                self.problem(i, LOG_NAME, f"{where}: chain broken, prev does not match the digest of the entry before "
                             "it (an entry was edited, deleted or reordered)", ProblemKind.CHAIN)
            if line != entry.line():  # a byte that does not change the parsed entry still counts
                self.problem(i, LOG_NAME, f"{where}: the line is not in the canonical form the harness writes (it "
                             "was edited)", ProblemKind.NOT_CANONICAL)
            self.package = self.package or entry.package
            if entry.package != self.package:
                self.problem(i, LOG_NAME, f"{where}: an entry of package {entry.package!r} in the dossier of "
                             f"{self.package!r}", ProblemKind.FOREIGN_PACKAGE)
            key = f"{entry.kind}:{entry.ident}"
            if key in self.idents:
                self.problem(i, LOG_NAME, f"{where}: {entry.kind} {entry.ident} appears a second time (a replayed "
                             "entry)", ProblemKind.DUPLICATE)
            self.idents.add(key)
            before, prev = prev, sha256_bytes(line)
            if self.chain_only:
                self._files(i, where, entry)
            elif isinstance(entry, EventEntry):
                self._event(i, where, entry)
            else:
                self._run(i, where, entry, before)
            self.line_digests.setdefault(prev, i)
            self.kinds.setdefault(prev, entry.kind)

    def _files(self, i: int, where: str, entry: Entry | EventEntry) -> None:
        refs = (((entry.document, "document"), (entry.bundle, "bundle"), *((f, f.path) for f in entry.files))
                if isinstance(entry, EventEntry)
                else ((entry.record, "record"), (entry.bundle, "bundle"), (entry.outputs, "outputs")))
        for ref, what in refs:
            try:
                actual = entry_file_digest(self.dossier.root, ref.path)
            except DossierError as e:
                self.problem(i, ref.path, f"{where}: {e.message}", ProblemKind.UNSAFE_FILE)
                continue
            except OSError:
                self.problem(i, ref.path, f"{where}: {what} file is missing", ProblemKind.FILE_MISSING)
                continue
            if actual != ref.sha256:
                self.problem(i, ref.path, f"{where}: {what} file differs from the digest in the log",
                             ProblemKind.FILE_DIGEST)

    def _run(self, i: int, where: str, entry: Entry, before: str) -> None:
        root = self.dossier.root
        if entry.record.sha256 in self.run_records:
            self.problem(i, entry.record.path, f"{where}: the same record as run {self.run_records[entry.record.sha256]} "
                         "(a replayed run)", ProblemKind.DUPLICATE)
        self.run_records.setdefault(entry.record.sha256, entry.run_id)
        unsafe = entry_files_problem(root, [entry.record.path, entry.bundle.path, entry.outputs.path])
        if unsafe:
            self.problem(i, entry.record.path, f"{where}: {unsafe}", ProblemKind.UNSAFE_FILE)
            return
        try:
            result = verify_run_files(root / entry.record.path, root / entry.bundle.path, root / entry.outputs.path,
                                      self.trusted)
        except HarnessError as e:
            self.problem(i, entry.record.path, f"{where}: {e.message}", ProblemKind.SIGNATURE, e.hint)
            return
        for ref, what in ((entry.record, "record"), (entry.bundle, "bundle"), (entry.outputs, "outputs")):
            # record and outputs were just hashed and matched the signed subjects: reuse those digests
            signed = result.subjects.get(Path(ref.path).name) if what != "bundle" else None
            actual = signed or entry_file_digest(root, ref.path)
            if actual != ref.sha256:
                self.problem(i, ref.path, f"{where}: {what} file differs from the digest in {LOG_NAME} (the file or "
                             "the log entry was edited)", ProblemKind.FILE_DIGEST)
        rec = result.record
        derived = {
            "run_id": rec.run_id, "time": rec.finished_at, "package": rec.package.name,
            "package_version": rec.package.version, "seal": rec.package.seal,
            "model_digest": rec.model.digest, "status": rec.status,
        }
        for k, v in derived.items():
            if getattr(entry, k) != v:
                self.problem(i, LOG_NAME, f"{where}: field {k!r} does not match the signed record",
                             ProblemKind.FIELD_MISMATCH)
        if rec.package.name != self.package:
            self.problem(i, entry.record.path, f"{where}: the signed record is a run of {rec.package.name!r}, not of "
                         f"{self.package!r}", ProblemKind.FOREIGN_PACKAGE)
        self._previous(i, where, entry, rec.previous_entry, before)
        self.report.signers.append((i, entry.run_id, result.signer))

    def _previous(self, i: int, where: str, entry: Entry, named: str | None, before: str) -> None:
        """The record's signed ``previous_entry``: the line just before its entry (what ``harness
        run`` signs, under the dossier lock); an older head is only noted; a line that is not
        earlier in this log means the record was moved, or comes from another log."""
        if named == (before if i > 1 else None):
            return
        if named is None or named in self.line_digests:
            self.report.warnings.append(Problem(
                i, entry.record.path, f"{where}: the record names "
                f"{'no previous entry' if named is None else f'entry {self.line_digests[named]}'} as its predecessor, "
                f"not entry {i - 1} (made concurrently by an older harness, or built by hand)",
                ProblemKind.PREVIOUS_ENTRY_OLDER))
            return
        self.problem(i, entry.record.path, f"{where}: the record's signed previous_entry {named[:12]} is not an earlier "
                     "entry of this log (entries before it were changed, removed or reordered, or the run was moved "
                     "here from another dossier)", ProblemKind.PREVIOUS_ENTRY)

    def _event(self, i: int, where: str, entry: EventEntry) -> None:
        d = self.dossier
        unsafe = entry_files_problem(d.root, [entry.document.path, entry.bundle.path, *(f.path for f in entry.files)])
        if unsafe:
            self.problem(i, entry.document.path, f"{where}: {unsafe}", ProblemKind.UNSAFE_FILE)
            return
        try:
            result = verify_event_files(d.root / entry.document.path, d.root / entry.bundle.path,
                                        [d.root / f.path for f in entry.files], self.trusted)
        except HarnessError as e:
            self.problem(i, entry.document.path, f"{where}: {e.message}", ProblemKind.SIGNATURE, e.hint)
            return
        for ref, what in ((entry.document, "document"), (entry.bundle, "bundle"), *((f, f.path) for f in entry.files)):
            if entry_file_digest(d.root, ref.path) != ref.sha256:
                self.problem(i, ref.path, f"{where}: {what} file differs from the digest in the log",
                             ProblemKind.FILE_DIGEST)
        doc = result.document
        for k, v in _event_fields(doc).items():
            if getattr(entry, k) != v:
                self.problem(i, LOG_NAME, f"{where}: field {k!r} does not match the signed {doc.kind} record",
                             ProblemKind.FIELD_MISMATCH)
        target = doc.refers_to
        if target.kind == "run" and target.sha256 not in self.run_records:
            self.problem(i, entry.document.path, f"{where}: refers to a run record ({target.sha256[:12]}) that is not "
                         "an earlier run of this dossier", ProblemKind.REFERENCE)
        if target.kind == "entry" and self.line_digests.get(target.sha256, i) >= i:
            self.problem(i, entry.document.path, f"{where}: refers to an entry ({target.sha256[:12]}) that is not an "
                         "earlier entry of this dossier", ProblemKind.REFERENCE)
        self._review_refs(i, where, entry, doc)
        self.report.signers.append((i, entry.id, result.signer))

    def _review_refs(self, i: int, where: str, entry: EventEntry, doc: EventRecord) -> None:
        """A label or adjudication names its run by id too, which must be the run of the record it
        refers to; an adjudication's label entries must be earlier label entries of this dossier."""
        if not isinstance(doc, LabelRecord | AdjudicationRecord):
            return
        named = self.run_records.get(doc.refers_to.sha256)
        if named is not None and named != doc.details.run_id:
            self.problem(i, entry.document.path, f"{where}: names run {doc.details.run_id}, but the record it refers "
                         f"to is run {named}'s", ProblemKind.REFERENCE)
        if isinstance(doc, AdjudicationRecord):
            for ref in doc.details.labels:
                if self.line_digests.get(ref.sha256, i) >= i or self.kinds.get(ref.sha256) != "label":
                    self.problem(i, entry.document.path, f"{where}: uses label entry {ref.seq} ({ref.sha256[:12]}), "
                                 "which is not an earlier label entry of this dossier", ProblemKind.REFERENCE)


def _check_checkpoints(
    d: Dossier, lines: list[bytes], package: str, leaves: list[bytes], trusted: Trusted, chain_only: bool,
    published: Path | bytes | None, memory: CheckpointMemory | None, remember: bool, report: DossierReport,
) -> None:
    """The stored checkpoint must be a trusted signature over exactly this log; the log must
    extend the remembered checkpoint and the published one."""
    def problem(what: str, kind: ProblemKind, hint: str | None = None) -> None:
        report.problems.append(Problem(None, CHECKPOINT_NAME, what, kind, hint))

    sign_hint = (f"check the entries, then sign the log as it is: `harness dossier checkpoint {d.root.name} --sign` "
                 "(old entries are not rewritten)")
    try:
        head = head_of(lines, package, leaves)
    except CheckpointError as e:
        problem(e.message, ProblemKind.CHECKPOINT_INVALID, e.hint)
        return
    report.tree = head
    try:
        stored, bundle = read_stored(d.root)
    except CheckpointError as e:
        problem(e.message, ProblemKind.CHECKPOINT_INVALID, e.hint)
        stored, bundle = None, None
    else:
        if stored is None:
            problem("no signed checkpoint: nothing fixes which entries the log holds and in what order (a dossier "
                    "from before checkpoints, or the checkpoint was removed)", ProblemKind.NO_CHECKPOINT, sign_hint)
    verified: VerifiedCheckpoint | None = None
    if stored is not None and _matches(stored.head, head, leaves, problem, sign_hint) and not chain_only:
        try:
            verified = verify_checkpoint(stored, bundle, trusted)
            report.checkpoint = verified
        except CheckpointError as e:
            problem(e.message, ProblemKind.CHECKPOINT_INVALID, e.hint)
    if published is not None:
        _check_published(published, head, leaves, trusted, problem, report)
    if chain_only:
        return
    memory = memory or CheckpointMemory()
    seen = memory.get(head.origin)
    if seen is not None:
        report.remembered = seen.head
        bad = check_consistent(seen.head, leaves, head)
        if bad is not None:
            problem(f"not the log this verifier saw before: {bad}", ProblemKind.NOT_CONSISTENT,
                    f"someone removed or rewrote entries of {d.root.name}; compare with the copy you verified "
                    f"(remembered in {memory.folder})")
    else:
        for other in memory.others(head.origin):
            report.warnings.append(Problem(None, CHECKPOINT_NAME, f"this dossier's first entry differs from that of "
                                           f"a dossier of the same package verified before ({other.describe()}, "
                                           f"origin {other.origin}): another keeper's dossier, or one rewritten from "
                                           "its first entry on", ProblemKind.NEW_ORIGIN))
    if remember and verified is not None and report.ok:
        memory.remember(stored)  # type: ignore[arg-type]


def _matches(cp: TreeHead, head: TreeHead, leaves: list[bytes], problem: Any, sign_hint: str) -> bool:
    """Whether the stored checkpoint is a tree head of exactly this log; a problem if not."""
    if cp.origin != head.origin:
        problem(f"the checkpoint is of another log (origin {cp.origin}, this log's is {head.origin}): the first entry "
                "was replaced, or the checkpoint comes from another dossier", ProblemKind.CHECKPOINT_MISMATCH)
        return False
    if cp.size > head.size:
        problem(f"the checkpoint covers {cp.size} entries but the log has {head.size}: entries were removed from the "
                f"end (checkpoint: {cp.describe()}; log: {head.describe()})", ProblemKind.CHECKPOINT_MISMATCH)
        return False
    if merkle.root_of(leaves[:cp.size]) != cp.root:
        problem(f"the log is not the one the checkpoint signed: an entry among the first {cp.size} was changed, "
                f"removed, inserted or reordered (checkpoint: {cp.describe()}; log: {head.describe()})",
                ProblemKind.CHECKPOINT_MISMATCH)
        return False
    if cp.size < head.size:
        problem(f"the checkpoint covers {cp.size} of {head.size} entries; entries {cp.size + 1}..{head.size} are not "
                "under any signed checkpoint (an append was interrupted before its checkpoint was signed, or entries "
                "were added by hand)", ProblemKind.CHECKPOINT_STALE, sign_hint)
    return True


def _check_published(published: Path | bytes, head: TreeHead, leaves: list[bytes], trusted: Trusted, problem: Any,
                     report: DossierReport) -> None:
    """A checkpoint published elsewhere: trusted signature, this dossier's origin, and consistent with the log."""
    try:
        raw = published if isinstance(published, bytes) else read_regular(published, limit=1 << 16)
        pub: Checkpoint = parse_checkpoint(raw)
        verify_checkpoint(pub, None, trusted)
    except (CheckpointError, OSError) as e:
        problem(f"the published checkpoint: {getattr(e, 'message', e)}", ProblemKind.CHECKPOINT_INVALID,
                getattr(e, "hint", None))
        return
    report.published = pub.head
    if pub.head.origin != head.origin:
        problem(f"the published checkpoint is of another log (origin {pub.head.origin})", ProblemKind.NOT_CONSISTENT)
        return
    bad = check_consistent(pub.head, leaves, head)
    if bad is not None:
        problem(f"not the log of the published checkpoint: {bad}", ProblemKind.NOT_CONSISTENT)


@dataclass
class DossierReport:
    dossier: Path
    entries: int = 0
    head: str = GENESIS
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    signers: list[tuple[int, str, str]] = field(default_factory=list)
    chain_only: bool = False  # signatures and records were not checked
    tree: TreeHead | None = None
    """The log's own tree head (origin, size, Merkle root), computed from its lines."""
    checkpoint: VerifiedCheckpoint | None = None
    """The stored checkpoint, once its signature verified."""
    remembered: TreeHead | None = None
    published: TreeHead | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> set[ProblemKind]:
        return {p.kind for p in self.problems}

    def as_dict(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "dossier": str(self.dossier),
            "ok": self.ok,
            "signatures_checked": not self.chain_only,
            "entries": self.entries,
            "head": self.head,
            "tree": self.tree.as_dict() if self.tree else None,
            "checkpoint": {**cp.head.as_dict(), "signer": cp.signer} if cp else None,
            "remembered": self.remembered.as_dict() if self.remembered else None,
            "published": self.published.as_dict() if self.published else None,
            "problems": [p.as_dict() for p in self.problems],
            "warnings": [p.as_dict() for p in self.warnings],
            "signers": [{"entry": n, "run_id": r, "signer": s} for n, r, s in self.signers],
        }


def require_verified(dossier: Dossier, trusted: Trusted | None, consequence: str, *,
                     remember: bool = False) -> DossierReport:
    """:func:`verify_dossier`, raising a :class:`DossierError` that lists the first problems when it
    fails. For commands that act on a dossier's history (approve, label, adjudicate, gate on
    reviews): ``consequence`` says what a broken dossier cannot do, e.g. "its labels decide nothing"."""
    report = verify_dossier(dossier, trusted, remember=remember)
    if not report.ok:
        listing = "\n".join(f"  - {p}" for p in report.problems[:10])
        raise DossierError(f"the dossier {dossier.root} does not verify; {consequence}:\n{listing}",
                           hint="`harness dossier verify` shows every problem")
    return report
