"""The review queue and human labels: uncertain answers go to people, and their labels are signed.

A scorer marks an answer ``uncertain`` when its rule cannot decide it (no validated
patterns for the language, mixed cues, an empty or cut answer, an unparsed judge, ...;
:mod:`harness.scoring.behaviours`). ``harness review queue`` lists those answers of a
verified run with their prompts (checked against the run's digests, as ``harness show``
does) and any label they already have; ``harness review label`` and ``harness review
import`` record people's labels as signed ``label`` events in the run's dossier.

Labels are refused whole (nothing written) when a sample is not in the run, a label is
not one of the package's behaviours, or an imported file is not strict CSV or JSONL of
the documented columns: a half-imported spreadsheet would leave a queue that looks
reviewed and is not. The latest label of a sample counts; earlier ones stay in the log
as its history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness._internal.clock import new_id, now
from harness._internal.hashing import sha256_bytes
from harness.audit.labels_file import LabelInput, read_labels_file
from harness.audit.review import reviewer_name
from harness.audit.show import Filters, SampleView, show_run
from harness.dossier.documents import EventPackage, LabelRecord, Reference
from harness.dossier.events import parse_event, sign_event
from harness.dossier.log import Dossier, Entry, EventEntry
from harness.dossier.refs import entry_file, locate
from harness.dossier.review_details import LabelDetails, LabelSource, LabelSummary, SampleLabel
from harness.dossier.verify import require_verified, verify_dossier
from harness.errors import HarnessError, LabelError, LabelRefusal
from harness.packages.archive import find_package
from harness.record import RunRecord, read_outputs
from harness.scoring.behaviours import allowed_labels, is_uncertain
from harness.signing.signers import KeySigner, Signer
from harness.signing.verify import Trusted

__all__ = ["LabelInput", "QueueItem", "ReviewQueue", "label_samples", "import_labels", "review_queue",
           "labels_of", "LabelEvent", "run_lines"]

_BY_COMMAND = LabelSource(kind="command")
MAX_NOTE = 4000
"""Characters of a note; a longer one is refused (a note says why, it is not a document)."""
MAX_REVIEWER = 200


@dataclass(frozen=True)
class LabelEvent:
    """A label event of a run, as read from its dossier (in log order)."""

    entry: EventEntry
    line_sha256: str
    document: LabelRecord


@dataclass(frozen=True)
class HistoryItem:
    """One label a sample got: when, from whom, which, and in which entry."""

    seq: int
    event: str
    time: str
    label: str
    reviewer: str
    note: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def labels_of(dossier: Dossier, entry: Entry) -> list[LabelEvent]:
    """Every label event about the run of ``entry``, in log order.

    The documents are read, not verified: callers that decide anything on them verify
    the dossier first (the gate, adjudication, labelling itself)."""
    out = []
    for e, raw in dossier.parsed_lines():
        if isinstance(e, EventEntry) and e.kind == "label" and e.refers_to == entry.record.sha256:
            doc = parse_event(entry_file(dossier.root, e.document.path))
            if isinstance(doc, LabelRecord):
                out.append(LabelEvent(entry=e, line_sha256=sha256_bytes(raw), document=doc))
    return out


def histories(events: Sequence[LabelEvent]) -> dict[str, list[HistoryItem]]:
    """Every sample's labels, oldest first (the last is the one that counts)."""
    out: dict[str, list[HistoryItem]] = {}
    for ev in events:
        for lab in ev.document.details.labels:
            out.setdefault(lab.sample, []).append(HistoryItem(
                seq=ev.entry.seq, event=ev.document.id, time=ev.document.time, label=lab.label,
                reviewer=lab.reviewer, note=lab.note))
    return out


def run_lines(dossier: Dossier, entry: Entry) -> list[dict[str, Any]]:
    """The run's outputs lines (the caller has verified the run, whose record signs their digest)."""
    return list(read_outputs(entry_file(dossier.root, entry.outputs.path)))


@dataclass(frozen=True)
class QueueItem:
    """An uncertain answer awaiting (or having) a person's label."""

    id: str
    language: str
    category: str
    expected: str
    verdict: str
    uncertain_reason: str | None
    prompt: str | None
    """Checked against the run's digest; None when the package was not found."""
    response: str | None
    label: str | None
    """The latest label, if any."""
    history: tuple[HistoryItem, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["history"] = [h.as_dict() for h in self.history]
        return d


@dataclass(frozen=True)
class ReviewQueue:
    record: RunRecord
    entry: int
    signer: str
    items: list[QueueItem]
    uncertain: int
    """Uncertain samples of the run (before the language filter)."""
    labelled: int
    """Of those, the ones with a label."""
    allowed: tuple[str, ...] | None
    prompts: str
    by_language: dict[str, tuple[int, int]] = field(default_factory=dict)
    """language -> (uncertain, of them labelled)."""
    untrusted_label_entries: tuple[int, ...] = ()
    """Label entries left out because the dossier does not verify there (their labels count for nothing)."""

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.record.run_id, "package": self.record.package.name, "entry": self.entry,
                "signer": self.signer, "uncertain": self.uncertain, "labelled": self.labelled,
                "unlabelled": self.uncertain - self.labelled, "allowed_labels": list(self.allowed or ()),
                "prompts": self.prompts, "untrusted_label_entries": list(self.untrusted_label_entries),
                "languages": {k: {"uncertain": u, "labelled": n} for k, (u, n) in sorted(self.by_language.items())},
                "items": [i.as_dict() for i in self.items]}


def _allowed(record: RunRecord, package: str | Path | None, archive: Path | None) -> tuple[str, ...]:
    try:
        pkg = find_package(record.package.seal, record.package.name, package=package, archive=archive)
    except HarnessError as e:
        raise LabelError(f"the package of run {record.run_id} (seal {record.package.seal[:16]}) was not found: "
                         f"{e.message}", LabelRefusal.NO_PACKAGE,
                         hint="its behaviours say which labels are allowed: pass --package DIR or --archive FILE"
                         ) from None
    return allowed_labels(pkg.manifest)


def review_queue(ref: str, *, language: str | None = None, trusted: Trusted | None = None,
                 dossiers_dir: Path | None = None, package: str | Path | None = None, archive: Path | None = None,
                 mirror: Path | None = None) -> ReviewQueue:
    """The uncertain samples of run ``ref`` (verified first), with prompts, answers, reasons and labels."""
    dossier, entry = locate(ref, dossiers_dir)
    shown = show_run(ref, Filters(language=language), trusted=trusted, dossiers_dir=dossiers_dir,
                     package=package, archive=archive, mirror=mirror)
    views: dict[str, SampleView] = {v.id: v for v in shown.samples}
    lines = run_lines(dossier, entry)
    events = labels_of(dossier, entry)
    if events:  # a label is shown only if its entry verifies (signature, trusted signer, digests, references)
        report = verify_dossier(dossier, trusted, remember=False)
        broken = {p.entry for p in report.problems if p.entry is not None} | (
            {ev.entry.seq for ev in events} if any(p.entry is None for p in report.problems) else set())
        untrusted = [ev.entry.seq for ev in events if ev.entry.seq in broken]
        events = [ev for ev in events if ev.entry.seq not in broken]
    else:
        untrusted = []
    hist = histories(events)
    uncertain = [x for x in lines if is_uncertain(x)]
    by_language: dict[str, tuple[int, int]] = {}
    for x in uncertain:
        u, n = by_language.get(x["language"], (0, 0))
        by_language[x["language"]] = (u + 1, n + (1 if x["id"] in hist else 0))
    items = []
    for x in sorted(uncertain, key=lambda x: (x["language"], x["id"])):
        if language is not None and x["language"] != language:
            continue
        v = views.get(x["id"])
        h = tuple(hist.get(x["id"], ()))
        response = x.get("response")
        items.append(QueueItem(
            id=x["id"], language=x["language"], category=x["category"], expected=x["expected"],
            verdict=x["verdict"], uncertain_reason=x.get("uncertain_reason"),
            prompt=v.prompt if v is not None else None, response=response if isinstance(response, str) else None,
            label=h[-1].label if h else None, history=h))
    try:
        allowed: tuple[str, ...] | None = _allowed(shown.record, package, archive)
    except LabelError:
        allowed = None
    return ReviewQueue(record=shown.record, entry=entry.seq, signer=shown.signer, items=items,
                       uncertain=len(uncertain), labelled=sum(1 for x in uncertain if x["id"] in hist),
                       allowed=allowed, prompts=shown.prompts, by_language=by_language,
                       untrusted_label_entries=tuple(untrusted))


@dataclass
class LabelResult:
    """A signed label event appended to the dossier."""

    document: LabelRecord
    entry: EventEntry
    run_entry: int
    key_created: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"entry": self.entry.seq, "id": self.document.id, "run_entry": self.run_entry,
                "run_id": self.document.details.run_id, "labels": [x.model_dump(mode="json")
                                                                   for x in self.document.details.labels]}


def label_samples(ref: str, labels: Sequence[LabelInput], *, trusted: Trusted | None = None,
                  dossiers_dir: Path | None = None, source: LabelSource = _BY_COMMAND,
                  package: str | Path | None = None, archive: Path | None = None,
                  signer: Signer | None = None) -> LabelResult:
    """Record ``labels`` of run ``ref`` as one signed ``label`` event, or refuse them all.

    The whole dossier must verify first (a label is evidence about a run, so the run and
    its history must be intact); every sample must be the run's, every label one of the
    package's behaviours, no sample twice. A reviewer not given is the local user
    (``HARNESS_REVIEWER``, else the login name): the signature says whose key signed.
    """
    if not labels:
        raise LabelError("no labels to record", LabelRefusal.EMPTY, hint="give --sample ID --label LABEL, or a file")
    dossier, entry = locate(ref, dossiers_dir)
    require_verified(dossier, trusted, "nothing in it can be labelled")
    record = dossier.record_of(entry)
    allowed = _allowed(record, package, archive)
    lines = {x["id"]: x for x in run_lines(dossier, entry)}
    made: list[SampleLabel] = []
    seen: set[str] = set()
    for n, lab in enumerate(labels, 1):
        where = f"label {n} ({lab.where})" if lab.where else f"label {n}"
        line = lines.get(lab.sample)
        if line is None:
            raise LabelError(f"{where}: run {record.run_id} has no sample {lab.sample!r}", LabelRefusal.UNKNOWN_SAMPLE,
                             hint="`harness review queue REF` lists the uncertain samples; `harness show REF` all")
        if lab.label not in allowed:
            raise LabelError(f"{where}: {lab.label!r} is not a label of {record.package.name} "
                             f"(allowed: {', '.join(allowed)})", LabelRefusal.UNKNOWN_LABEL,
                             hint="a label is one of the behaviours the package scores")
        if lab.sample in seen:
            raise LabelError(f"{where}: sample {lab.sample!r} is labelled twice", LabelRefusal.DUPLICATE_SAMPLE,
                             hint="give each sample one label per import; a later import may change it")
        if len(lab.note) > MAX_NOTE or len(lab.reviewer or "") > MAX_REVIEWER:
            raise LabelError(f"{where}: the note is over {MAX_NOTE} characters or the reviewer's name over "
                             f"{MAX_REVIEWER}", LabelRefusal.MALFORMED)
        seen.add(lab.sample)
        made.append(SampleLabel(sample=lab.sample, language=line["language"], label=lab.label,
                                reviewer=reviewer_name(lab.reviewer), note=lab.note, scorer_verdict=line["verdict"],
                                uncertain_reason=line.get("uncertain_reason") if is_uncertain(line) else None))
    reviewers = tuple(dict.fromkeys(x.reviewer for x in made))
    doc = LabelRecord(
        id=new_id(), time=now(),
        package=EventPackage(name=record.package.name, version=record.package.version, seal=record.package.seal),
        refers_to=Reference(kind="run", sha256=entry.record.sha256, run_id=record.run_id, seq=entry.seq),
        summary=LabelSummary(run_id=record.run_id, entry=entry.seq, labels=len(made),
                             samples=tuple(x.sample for x in made[:20]), reviewers=reviewers, source=source.kind),
        details=LabelDetails(run_id=record.run_id, outputs_content_sha256=record.outputs.content_sha256,
                             allowed=allowed, source=source, labels=tuple(made)),
    )
    signed = sign_event(doc, {}, signer or KeySigner())
    added = dossier.add_event(doc, signed.bundle, {}, checkpoint=signer or KeySigner())
    return LabelResult(document=doc, entry=added, run_entry=entry.seq, key_created=signed.key_created)


def import_labels(ref: str, path: Path, *, reviewer: str | None = None, trusted: Trusted | None = None,
                  dossiers_dir: Path | None = None, package: str | Path | None = None, archive: Path | None = None,
                  signer: Signer | None = None) -> LabelResult:
    """Read a CSV or JSONL file of labels (bounded, strict) and record them all as one signed event, or none."""
    labels, source = read_labels_file(path, default_reviewer=reviewer)
    return label_samples(ref, labels, trusted=trusted, dossiers_dir=dossiers_dir, source=source, package=package,
                         archive=archive, signer=signer)
