"""The release gate on a recorded run: ``harness gate REF``.

A CI job often runs and gates in separate steps (``harness run --no-gate``, then
``harness gate mini-safety@latest``), or gates a run made elsewhere. The gate verifies
the record's signature first (a number from an unsigned or altered record decides
nothing), then decides every baseline the run was checked against by the current rule
(:func:`harness.scoring.metrics.check_baselines`) from the run's recorded counts. A
record written before the rule existed is decided afresh from its counts, never from
its recorded bootstrap interval or its old PASS/FAIL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from harness.dossier.runs import verify_record
from harness.packages.manifest import Baseline, Gate
from harness.record import RunRecord
from harness.scoring.metrics import BaselineVerdict, check_baselines, gate_failed
from harness.signing.verify import Trusted

EXIT_GATE_FAILED: Final = 7
"""The exit code of ``harness run`` and ``harness gate`` when a baseline fails the gate."""


@dataclass(frozen=True)
class GateResult:
    """A recorded run's baselines decided by the gate's rule."""

    record: RunRecord
    verdicts: list[BaselineVerdict]
    rule: str
    signer: str
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return gate_failed(self.verdicts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.record.run_id, "package": self.record.package.name, "signer": self.signer,
            "gate": "FAIL" if self.failed else "PASS", "rule": self.rule, "subset": self.record.is_subset,
            "baselines": [v.model_dump(mode="json") for v in self.verdicts], "notes": self.notes,
        }


def gate_run(ref: str | Path, trusted: Trusted | None = None, *, dossiers_dir: Path | None = None,
             strict: bool = False, confidence: float = 0.95) -> GateResult:
    """Verify the run ``ref`` (a record path, run folder or ``PACKAGE@N``) and decide its baselines.

    ``strict``: an INCONCLUSIVE baseline fails the gate too (the package's own ``[gate]``
    setting is not in the record; a CI that wants it passes ``strict``).
    """
    res = verify_record(ref, trusted, dossiers_dir=dossiers_dir)
    rec = res.record
    rule = Gate(inconclusive="fail" if strict else "pass")
    baselines = [
        Baseline(model=v.model, metric=v.metric, group=v.group, value=min(1.0, max(0.0, v.expected)),
                 tolerance=v.tolerance)
        for v in rec.baselines
    ]
    names = sorted({b.model for b in baselines})
    verdicts = check_baselines(baselines, rec.metrics, names, rule, confidence)
    notes = []
    if not baselines:
        notes.append(f"run {rec.run_id} was checked against no baselines: the package has none for its model")
    if rec.is_subset:
        notes.append("this run covered a subset of the package: its verdicts describe that subset only")
    if any(m.ci_method is None for m in rec.metrics):
        notes.append("the record predates exact intervals: its baselines were decided again from its counts")
    return GateResult(record=rec, verdicts=verdicts, rule=rule.describe(confidence), signer=res.signer, notes=notes)
