"""Hand-off before use: a run's numbers wait for people before they gate a release or back a claim.

A package may declare ``[review] required = true``, a suite ``[gate] require_review =
true``, and ``harness gate --require-review`` asks for it for any package. Then a run is
*awaiting review* while

* any sample its scorer marked uncertain has no human label (``harness review label`` /
  ``import``), or
* it has no approval (``harness dossier approve``) of its run entry or of one of its
  adjudication entries that comes after its last label (an approval given before a
  label was added did not see that label).

Awaiting review is its own outcome with its own exit status, :data:`EXIT_AWAITING_REVIEW`
(8), neither a pass nor a failure: nothing was decided. Once review is complete the gate
and the claim check decide on the adjudicated numbers (:mod:`harness.audit.adjudicate`).
Labels and approvals are read from a dossier verified first, so only signed, trusted
events release a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from harness._internal.hashing import sha256_bytes
from harness.audit.adjudicate import Adjudicated, apply_labels
from harness.audit.labels import labels_of, run_lines
from harness.dossier.log import Dossier, Entry, EventEntry
from harness.dossier.refs import locate
from harness.dossier.review_details import AdjudicationSummary
from harness.dossier.verify import require_verified
from harness.errors import HarnessError
from harness.packages.archive import find_package
from harness.record import RunRecord
from harness.signing.verify import Trusted

EXIT_AWAITING_REVIEW: Final = 8
"""The exit status of ``harness gate``, ``harness claim check`` and a suite's gate while a run that
must be reviewed is not (uncertain samples unlabelled, or no approval after the last label)."""

RequiredBy = Literal["package", "suite", "option"]


@dataclass(frozen=True)
class Approval:
    seq: int
    reviewer: str
    time: str
    note: str
    approves: int
    """The entry approved: the run's, or one of its adjudications'."""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ReviewStatus:
    """Where a run stands in review: what is uncertain, what is labelled, and who approved it."""

    run_id: str
    entry: int
    required_by: tuple[RequiredBy, ...]
    uncertain: tuple[str, ...]
    unlabelled: tuple[str, ...]
    label_events: int
    reviewers: tuple[str, ...]
    approval: Approval | None
    stale_approval: Approval | None = None
    """The latest approval, when a label came after it (so it does not count)."""
    adjudicated: Adjudicated | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def required(self) -> bool:
        return bool(self.required_by)

    @property
    def complete(self) -> bool:
        return not self.unlabelled and self.approval is not None

    @property
    def awaiting(self) -> bool:
        return self.required and not self.complete

    def reasons(self) -> list[str]:
        """Why the run is awaiting review, in words (empty when it is not)."""
        out = []
        if self.unlabelled:
            shown = ", ".join(self.unlabelled[:5]) + (" ..." if len(self.unlabelled) > 5 else "")
            out.append(f"{len(self.unlabelled)} of {len(self.uncertain)} uncertain samples have no label ({shown}): "
                       f"`harness review queue` lists them")
        if self.approval is None:
            if self.stale_approval is not None:
                out.append(f"the approval at entry {self.stale_approval.seq} came before the last label: approve "
                           "again (`harness dossier approve`)")
            else:
                out.append("no approval of the run or its adjudication (`harness dossier approve`)")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "entry": self.entry, "required": self.required,
                "required_by": list(self.required_by), "state": self.state,
                "uncertain": len(self.uncertain), "unlabelled": list(self.unlabelled),
                "label_events": self.label_events, "reviewers": list(self.reviewers),
                "approval": self.approval.as_dict() if self.approval else None,
                "stale_approval": self.stale_approval.as_dict() if self.stale_approval else None,
                "reasons": self.reasons(), "notes": list(self.notes),
                "adjudicated_changes": len(self.adjudicated.changed) if self.adjudicated else 0}

    @property
    def state(self) -> Literal["awaiting review", "reviewed", "not required"]:
        if self.awaiting:
            return "awaiting review"
        return "reviewed" if self.complete else "not required"


def package_requires_review(record: RunRecord, *, package: str | Path | None = None) -> tuple[bool, str | None]:
    """Whether the run's package (found by the record's seal, so its manifest is the one run) declares
    ``[review] required = true``; and a note when the package was not found (then: not required)."""
    try:
        pkg = find_package(record.package.seal, record.package.name, package=package)
    except HarnessError as e:
        return False, (f"the package of run {record.run_id} was not found by its seal ({e.message}), so whether it "
                       "requires review is unknown; pass --require-review to require it")
    review = getattr(pkg.manifest, "review", None)
    return bool(getattr(review, "required", False)), None


def review_status(dossier: Dossier, entry: Entry, required_by: tuple[RequiredBy, ...] = ()) -> ReviewStatus:
    """The review state of the run of ``entry`` from its dossier's label, adjudication and review
    entries (the caller has verified the dossier)."""
    record = dossier.record_of(entry)
    lines = run_lines(dossier, entry)
    events = labels_of(dossier, entry)
    adjudicated = apply_labels(record, lines, events)
    parsed = dossier.parsed_lines()
    targets = {sha256_bytes(raw): e.seq for e, raw in parsed
               if e.seq == entry.seq or (isinstance(e, EventEntry) and isinstance(e.summary, AdjudicationSummary)
                                          and e.refers_to == entry.record.sha256)}
    last_label = max((ev.entry.seq for ev in events), default=0)
    approvals = [e for e, _ in parsed if isinstance(e, EventEntry) and e.kind == "review" and e.refers_to in targets]
    latest = approvals[-1] if approvals else None

    def approval(e: EventEntry) -> Approval:
        s = e.summary
        return Approval(seq=e.seq, reviewer=getattr(s, "reviewer", "?"), time=e.time, note=getattr(s, "note", ""),
                        approves=targets[e.refers_to])

    valid = [e for e in approvals if e.seq > last_label]
    return ReviewStatus(
        run_id=record.run_id, entry=entry.seq, required_by=required_by,
        uncertain=tuple(sorted(x["id"] for x in lines if x.get("uncertain") is True)),
        unlabelled=adjudicated.unlabelled_uncertain, label_events=len(events),
        reviewers=tuple(dict.fromkeys(lab.reviewer for ev in events for lab in ev.document.details.labels)),
        approval=approval(valid[-1]) if valid else None,
        stale_approval=approval(latest) if latest is not None and not valid else None,
        adjudicated=adjudicated,
    )


def review_state(ref: str, *, trusted: Trusted | None = None, dossiers_dir: Path | None = None) -> ReviewStatus:
    """``harness review status REF``: the run's review state as if review were required (the run's
    dossier verified first); ``required_by`` also says whether its package requires it."""
    dossier, entry = locate(ref, dossiers_dir)
    require_verified(dossier, trusted, "its reviews count for nothing")
    by_package, _ = package_requires_review(dossier.record_of(entry))
    required: tuple[RequiredBy, ...] = ("package", "option") if by_package else ("option",)
    return review_status(dossier, entry, required)
