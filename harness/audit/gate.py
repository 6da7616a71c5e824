"""The release gate on a recorded run: ``harness gate REF``.

A CI job often runs and gates in separate steps (``harness run --no-gate``, then
``harness gate mini-safety@latest``), or gates a run made elsewhere. The gate verifies
the record's signature first (a number from an unsigned or altered record decides
nothing), then decides every baseline the run was checked against by the current rule
(:func:`harness.scoring.metrics.check_baselines`) from the run's recorded counts. A
record written before the rule existed is decided afresh from its counts, never from
its recorded bootstrap interval or its old PASS/FAIL.

Where the run must be reviewed first (its package's ``[review] required = true``, or
``require_review``), the gate verifies the whole dossier and answers "awaiting review"
(exit :data:`EXIT_AWAITING_REVIEW`) until every uncertain sample is labelled and the run
approved; then it decides on the adjudicated numbers (:mod:`harness.audit.handoff`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from harness.audit.adjudicate import record_baselines
from harness.audit.handoff import (
    EXIT_AWAITING_REVIEW,
    RequiredBy,
    ReviewStatus,
    package_requires_review,
    review_status,
)
from harness.dossier.refs import locate
from harness.dossier.runs import verify_record
from harness.dossier.verify import require_verified
from harness.packages.manifest import Baseline, Gate
from harness.record import RunRecord
from harness.scoring.metrics import BaselineVerdict, check_baselines, gate_failed
from harness.signing.verify import Trusted

EXIT_GATE_FAILED: Final = 7
"""The exit code of ``harness run`` and ``harness gate`` when a baseline fails the gate."""
__all__ = ["EXIT_AWAITING_REVIEW", "EXIT_GATE_FAILED", "GateResult", "gate_run"]


@dataclass(frozen=True)
class GateResult:
    """A recorded run's baselines decided by the gate's rule."""

    record: RunRecord
    verdicts: list[BaselineVerdict]
    rule: str
    signer: str
    notes: list[str] = field(default_factory=list)
    review: ReviewStatus | None = None
    """The run's review state where review is required (None: not required)."""

    @property
    def awaiting_review(self) -> bool:
        return self.review is not None and self.review.awaiting

    @property
    def failed(self) -> bool:
        return not self.awaiting_review and gate_failed(self.verdicts)

    @property
    def word(self) -> str:
        return "AWAITING REVIEW" if self.awaiting_review else "FAIL" if self.failed else "PASS"

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.record.run_id, "package": self.record.package.name, "signer": self.signer,
            "gate": self.word, "rule": self.rule, "subset": self.record.is_subset,
            "baselines": [v.model_dump(mode="json") for v in self.verdicts], "notes": self.notes,
            "review": self.review.as_dict() if self.review else None,
            "adjudicated": bool(self.review and self.review.complete),
        }


def gate_run(ref: str | Path, trusted: Trusted | None = None, *, dossiers_dir: Path | None = None,
             strict: bool = False, confidence: float = 0.95, require_review: bool = False) -> GateResult:
    """Verify the run ``ref`` (a record path, run folder or ``PACKAGE@N``) and decide its baselines.

    ``strict``: an INCONCLUSIVE baseline fails the gate too (the package's own ``[gate]``
    setting is not in the record; a CI that wants it passes ``strict``).
    ``require_review``: the run must be reviewed first even if its package does not say so.
    """
    res = verify_record(ref, trusted, dossiers_dir=dossiers_dir)
    rec = res.record
    rule = Gate(inconclusive="fail" if strict else "pass")
    baselines: list[Baseline] = record_baselines(rec)
    names = sorted({b.model for b in baselines})
    notes: list[str] = []
    review = _review(ref, rec, trusted, dossiers_dir, require_review, notes)
    metrics = rec.metrics
    if review is not None and review.complete and review.adjudicated is not None:
        metrics = list(review.adjudicated.metrics)
        notes.append(f"decided on the adjudicated metrics: {len(review.adjudicated.samples)} labelled samples "
                     f"({len(review.adjudicated.changed)} verdicts changed), approved at entry "
                     f"{review.approval.seq if review.approval else '?'}")
    verdicts = check_baselines(baselines, metrics, names, rule, confidence)
    if not baselines:
        notes.append(f"run {rec.run_id} was checked against no baselines: the package has none for its model")
    if rec.is_subset:
        notes.append("this run covered a subset of the package: its verdicts describe that subset only")
    if any(m.ci_method is None for m in rec.metrics):
        notes.append("the record predates exact intervals: its baselines were decided again from its counts")
    return GateResult(record=rec, verdicts=verdicts, rule=rule.describe(confidence), signer=res.signer, notes=notes,
                      review=review)


def _review(ref: str | Path, rec: RunRecord, trusted: Trusted | None, dossiers_dir: Path | None,
            require_review: bool, notes: list[str]) -> ReviewStatus | None:
    """The run's review state when review is required; the whole dossier is verified first, so only
    signed, trusted labels and approvals release it."""
    by_package, note = package_requires_review(rec)
    if note and not require_review:
        notes.append(note)
    required: tuple[RequiredBy, ...] = ()
    if by_package:
        required += ("package",)
    if require_review:
        required += ("option",)
    if not required:
        return None
    dossier, entry = locate(str(ref), dossiers_dir)
    require_verified(dossier, trusted, f"its reviews cannot release run {rec.run_id}")
    return review_status(dossier, entry, required)
