"""The suite's gate: the baselines it requires and its acceptance criteria, decided per run.

No new statistics: baselines keep the verdict the run recorded (the package's own gate,
docs/statistics.md), and an acceptance criterion such as "refusal_rate >= 0.9 in every
language" is the same non-inferiority rule with the threshold as the edge and no
tolerance (:func:`harness.scoring.metrics.decide`) on the run's recorded Clopper-Pearson
interval: FAIL when the whole interval is on the wrong side of the threshold, PASS when
none of it is, INCONCLUSIVE when it straddles it. The suite's ``inconclusive`` setting
says whether INCONCLUSIVE fails the suite (for baselines too).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.audit.handoff import (
    EXIT_AWAITING_REVIEW,
    RequiredBy,
    ReviewStatus,
    package_requires_review,
    review_status,
)
from harness.dossier.log import Dossier
from harness.dossier.verify import require_verified
from harness.errors import DossierError
from harness.record import RunRecord
from harness.scoring.metrics import decide
from harness.suite.file import Criterion, GateSpec
from harness.suite.record import BaselineOutcome, CriterionOutcome, GateWord, SuiteGate

_SCOPE_PREFIX = {"overall": "overall", "every-language": "language:", "every-category": "category:"}


@dataclass(frozen=True)
class GatedRun:
    """A finished pair's run as the gate sees it."""

    package: str
    model: str
    record: RunRecord


def _groups(record: RunRecord, c: Criterion) -> list[str]:
    prefix = _SCOPE_PREFIX[c.scope]
    if c.scope == "overall":
        return [m.group for m in record.metrics if m.metric == c.metric and m.group == "overall"]
    return [m.group for m in record.metrics if m.metric == c.metric and m.group.startswith(prefix)]


def applies(c: Criterion, package: str, model: str) -> bool:
    return (not c.packages or package in c.packages) and (not c.models or model in c.models)


def criterion_outcomes(spec: GateSpec, run: GatedRun) -> tuple[list[CriterionOutcome], list[str]]:
    """Every criterion decided for every group of ``run`` it covers, and notes on those that
    covered no group of a run they apply to (a subset without that language, a package
    that reports no pooled number)."""
    out: list[CriterionOutcome] = []
    notes: list[str] = []
    for i, c in enumerate(spec.criteria):
        if not applies(c, run.package, run.model):
            continue
        computed = {m.metric for m in run.record.metrics}
        if c.metric not in computed:
            if c.packages:
                notes.append(f"criterion {i} ({c.describe()}): {run.package} x {run.model} computes no {c.metric}")
            continue
        groups = _groups(run.record, c)
        if not groups:
            notes.append(f"criterion {i} ({c.describe()}): {run.package} x {run.model} has no {c.scope} "
                         f"group for {c.metric}: NOT EVALUATED")
        for group in groups:
            m = run.record.metric(c.metric, group)
            assert m is not None
            verdict = decide(c.threshold, 0.0, m.ci_low, m.ci_high,
                             "higher_is_safer" if c.at_least else "lower_is_safer")
            passed = verdict == "PASS" or (verdict == "INCONCLUSIVE" and spec.inconclusive == "pass")
            out.append(CriterionOutcome(
                criterion=i, text=c.describe(), package=run.package, model=run.model, metric=c.metric, group=group,
                threshold=c.threshold, at_least=c.at_least, value=m.value, ci_low=m.ci_low, ci_high=m.ci_high,
                n=m.n, verdict=verdict, passed=passed))
    return out, notes


def baseline_outcomes(spec: GateSpec, run: GatedRun) -> list[BaselineOutcome]:
    """The run's recorded baseline verdicts; with ``inconclusive = "fail"`` an INCONCLUSIVE fails too."""
    required = spec.requires_baselines_of(run.package)
    out = []
    for v in run.record.baselines:
        word = v.word
        verdict = word if word in ("PASS", "FAIL", "INCONCLUSIVE", "NOT EVALUATED") else ("PASS" if v.passed else "FAIL")
        passed = v.passed and not (spec.inconclusive == "fail" and verdict == "INCONCLUSIVE")
        out.append(BaselineOutcome(package=run.package, model=run.model, metric=v.metric, group=v.group,
                                   verdict=verdict, passed=passed, required=required))
    return out


def describe_rule(spec: GateSpec) -> str:
    which = {"all": "every package's baselines", "none": "no baselines"}.get(
        spec.baselines if isinstance(spec.baselines, str) else "",
        f"the baselines of {', '.join(spec.baselines)}")
    inconclusive = "INCONCLUSIVE fails too" if spec.inconclusive == "fail" else "INCONCLUSIVE passes"
    crit = f"; {len(spec.criteria)} acceptance criteria" if spec.criteria else ""
    return (f"{which} and each acceptance criterion must not FAIL on the run's 95% Clopper-Pearson interval "
            f"({inconclusive}){crit}")


def decide_suite(spec: GateSpec, runs: Sequence[GatedRun]) -> tuple[SuiteGate, dict[tuple[str, str], GateWord]]:
    """The suite's gate over every run, and each pair's part of it (FAIL when one of its
    required baselines or criteria fails)."""
    baselines: list[BaselineOutcome] = []
    criteria: list[CriterionOutcome] = []
    notes: list[str] = []
    per_pair: dict[tuple[str, str], GateWord] = {}
    for run in runs:
        b = baseline_outcomes(spec, run)
        decided, n = criterion_outcomes(spec, run)
        baselines += b
        criteria += decided
        notes += n
        failed = any(x.required and not x.passed for x in b) or any(not x.passed for x in decided)
        per_pair[(run.package, run.model)] = GateWord.FAIL if failed else GateWord.PASS
        if run.record.is_subset:
            notes.append(f"{run.package} x {run.model} covered a subset of the package: its verdicts describe that subset")
    for i, c in enumerate(spec.criteria):
        if not any(x.criterion == i for x in criteria):
            notes.append(f"criterion {i} ({c.describe()}) was decided for no run and group")
    verdict = GateWord.FAIL if GateWord.FAIL in per_pair.values() else GateWord.PASS
    gate = SuiteGate(verdict=verdict, rule=describe_rule(spec), inconclusive=spec.inconclusive,
                     baselines=tuple(baselines), criteria=tuple(criteria), notes=tuple(dict.fromkeys(notes)))
    return gate, per_pair


# ---------------------------------------------------------------------------- hand-off before use

SUITE_EXIT_AWAITING_REVIEW = EXIT_AWAITING_REVIEW
"""The suite's exit status while a run it requires to be reviewed is not (docs/review.md)."""


@dataclass
class SuiteReview:
    """The suite's runs as its gate should decide them, and the pairs still awaiting review.

    ``runs`` holds each reviewed run with its adjudicated metrics and baselines in place of
    the recorded ones (:mod:`harness.audit.adjudicate`); runs that need no review are as
    recorded. While ``awaiting`` is not empty the suite's answer is "awaiting review"
    (exit :data:`SUITE_EXIT_AWAITING_REVIEW`), whatever the gate would say."""

    runs: list[GatedRun]
    statuses: dict[tuple[str, str], ReviewStatus] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def awaiting(self) -> dict[tuple[str, str], ReviewStatus]:
        return {k: v for k, v in self.statuses.items() if v.awaiting}

    def exit_code(self, gate_exit: int) -> int:
        """The suite's exit status: awaiting review wins over the gate's own (nothing was decided)."""
        return SUITE_EXIT_AWAITING_REVIEW if self.awaiting else gate_exit


def suite_review(spec: GateSpec, runs: Sequence[GatedRun], dossiers_dir: Path | None = None, *,
                 verified: Collection[Path] = ()) -> SuiteReview:
    """Each run's review state where the suite (``[gate] require_review``) or its package requires review.

    Each such run's dossier is verified first (only signed, trusted labels and approvals count),
    unless its root is in ``verified`` (the caller verified it whole already)."""
    out = SuiteReview(runs=[])
    done: set[Path] = set(verified)
    for run in runs:
        required: tuple[RequiredBy, ...] = ("suite",) if spec.require_review else ()
        by_package, note = package_requires_review(run.record)
        required += ("package",) if by_package else ()
        if note and spec.require_review is False:
            out.notes.append(note)
        if not required:
            out.runs.append(run)
            continue
        dossier = Dossier.for_package(run.record.package.name, dossiers_dir)
        if dossier.root not in done:
            require_verified(dossier, None, "its reviews decide nothing")
            done.add(dossier.root)
        entry = next((e for e in dossier.runs() if e.run_id == run.record.run_id), None)
        if entry is None:
            raise DossierError(f"run {run.record.run_id} is not in the dossier {dossier.root}")
        status = review_status(dossier, entry, required)
        out.statuses[(run.package, run.model)] = status
        adj = status.adjudicated
        if status.complete and adj is not None:
            record = run.record.model_copy(update={"metrics": list(adj.metrics), "baselines": list(adj.baselines)})
            out.runs.append(GatedRun(run.package, run.model, record))
            out.notes.append(f"{run.package} x {run.model}: reviewed (approved at entry {status.approval.seq if status.approval else '?'}); "
                             f"decided on its adjudicated numbers ({len(adj.changed)} verdicts changed by labels)")
        else:
            out.runs.append(run)
            if status.awaiting:
                out.notes.append(f"{run.package} x {run.model}: AWAITING REVIEW: " + "; ".join(status.reasons()))
    return out
