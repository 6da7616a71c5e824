"""Adjudication: a run's numbers recomputed with people's labels, signed beside the original.

The rule is one sentence: for every sample a person labelled, the latest label (in log
order) replaces the scorer's verdict; every other sample keeps its recorded verdict;
the metrics and their Clopper-Pearson intervals, and the baselines the run was checked
against, are then computed exactly as a run computes them
(:func:`harness.scoring.metrics.compute_metrics`, :func:`check_baselines`). Everything
comes from the signed record, its outputs and the signed label events, so anyone can
recompute it; ``harness review adjudicate`` signs the result as an ``adjudication``
event (the original record is never replaced or modified), and ``harness review diff``
shows what changed, metric by metric, with the samples whose verdict changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from harness._internal.clock import new_id, now
from harness.audit.labels import LabelEvent, labels_of, run_lines
from harness.dossier.documents import AdjudicationRecord, EventPackage, Reference
from harness.dossier.events import parse_event, sign_event
from harness.dossier.log import Dossier, Entry, EventEntry
from harness.dossier.refs import entry_file, locate
from harness.dossier.review_details import (
    AdjudicatedMetric,
    AdjudicatedSample,
    AdjudicationDetails,
    AdjudicationSummary,
    LabelEntryRef,
)
from harness.dossier.verify import require_verified
from harness.errors import BadReferenceError, DossierError
from harness.packages.manifest import Baseline, Gate
from harness.record import RunRecord
from harness.scoring.base import Verdict
from harness.scoring.behaviours import is_uncertain
from harness.scoring.metrics import (
    BaselineVerdict,
    Scored,
    check_baselines,
    compute_metrics,
    gate_failed,
)
from harness.signing.signers import KeySigner, Signer
from harness.signing.verify import Trusted

RULE = ("the latest label of each labelled sample (in dossier order) replaces the scorer's verdict; other samples "
        "keep their recorded verdict; metrics, intervals and baselines are computed as the run computes them")
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Adjudicated:
    """A run's numbers with its labels applied (not yet signed)."""

    record: RunRecord
    samples: tuple[AdjudicatedSample, ...]
    metrics: tuple[AdjudicatedMetric, ...]
    baselines: tuple[BaselineVerdict, ...]
    labels: tuple[LabelEntryRef, ...]
    uncertain: int
    unlabelled_uncertain: tuple[str, ...]
    gate_rule: str

    @property
    def changed(self) -> tuple[AdjudicatedSample, ...]:
        return tuple(s for s in self.samples if s.changed)

    @property
    def gate(self) -> str:
        return "FAIL" if gate_failed(self.baselines) else "PASS"

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.record.run_id, "rule": RULE, "labelled": len(self.samples),
                "changed": [s.model_dump(mode="json") for s in self.changed],
                "uncertain": self.uncertain, "unlabelled_uncertain": list(self.unlabelled_uncertain),
                "metrics": [m.model_dump(mode="json") for m in self.metrics],
                "baselines": [b.model_dump(mode="json") for b in self.baselines], "gate": self.gate,
                "gate_rule": self.gate_rule, "labels": [x.model_dump(mode="json") for x in self.labels]}


def record_baselines(record: RunRecord) -> list[Baseline]:
    """The baselines the run was checked against, as the gate re-decides them (:mod:`harness.audit.gate`)."""
    return [Baseline(model=v.model, metric=v.metric, group=v.group, value=min(1.0, max(0.0, v.expected)),
                     tolerance=v.tolerance) for v in record.baselines]


def apply_labels(record: RunRecord, lines: Sequence[dict[str, Any]], events: Sequence[LabelEvent], *,
                 strict: bool = False) -> Adjudicated:
    """The adjudicated samples, metrics and baselines of a run given its label events (in log order)."""
    latest: dict[str, tuple[str, str, str]] = {}  # sample -> (label, reviewer, event id)
    for ev in events:
        for lab in ev.document.details.labels:
            latest[lab.sample] = (lab.label, lab.reviewer, ev.document.id)
    scored = []
    samples = []
    for x in sorted(lines, key=lambda x: x["id"]):
        verdict = x["verdict"]
        if x["id"] in latest:
            label, reviewer, event = latest[x["id"]]
            samples.append(AdjudicatedSample(id=x["id"], language=x["language"], category=x["category"],
                                             expected=x["expected"], scorer_verdict=verdict, label=label,
                                             reviewer=reviewer, label_event=event, changed=label != verdict))
            verdict = label
        scored.append(Scored(x["id"], x["language"], x["category"], x["expected"], cast(Verdict, verdict)))
    names = list(dict.fromkeys(m.metric for m in record.metrics))
    overall = any(m.group == "overall" for m in record.metrics)
    before = {(m.metric, m.group): m.value for m in record.metrics}
    metrics = []
    for mv in compute_metrics(scored, names, CONFIDENCE, overall=overall):
        old = before.get((mv.metric, mv.group))
        metrics.append(AdjudicatedMetric(**mv.model_dump(mode="json"), original=old,
                                         delta=None if old is None else round(mv.value - old, 6)))
    rule = Gate(inconclusive="fail" if strict else "pass")
    model_names = sorted({b.model for b in record.baselines})
    verdicts = check_baselines(record_baselines(record), [m for m in metrics], model_names, rule, CONFIDENCE)
    uncertain = [x["id"] for x in lines if is_uncertain(x)]
    return Adjudicated(
        record=record, samples=tuple(samples), metrics=tuple(metrics), baselines=tuple(verdicts),
        labels=tuple(LabelEntryRef(seq=ev.entry.seq, id=ev.document.id, sha256=ev.line_sha256) for ev in events),
        uncertain=len(uncertain), unlabelled_uncertain=tuple(sorted(i for i in uncertain if i not in latest)),
        gate_rule=rule.describe(CONFIDENCE))


def adjudicated_run(dossier: Dossier, entry: Entry, *, strict: bool = False) -> Adjudicated:
    """The run of ``entry`` adjudicated with every label event of it in the dossier (the caller verified it)."""
    return apply_labels(dossier.record_of(entry), run_lines(dossier, entry), labels_of(dossier, entry), strict=strict)


def _verified(ref: str, trusted: Trusted | None, dossiers_dir: Path | None) -> tuple[Dossier, Entry]:
    dossier, entry = locate(ref, dossiers_dir)
    require_verified(dossier, trusted, "its labels decide nothing")
    return dossier, entry


@dataclass
class AdjudicationResult:
    adjudicated: Adjudicated
    document: AdjudicationRecord
    entry: EventEntry
    key_created: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"entry": self.entry.seq, "id": self.document.id, **self.adjudicated.as_dict()}


def adjudicate(ref: str, *, trusted: Trusted | None = None, dossiers_dir: Path | None = None,
               signer: Signer | None = None) -> AdjudicationResult:
    """Verify the dossier, apply the run's labels, and append the signed ``adjudication`` event."""
    dossier, entry = _verified(ref, trusted, dossiers_dir)
    adj = adjudicated_run(dossier, entry)
    rec = adj.record
    doc = AdjudicationRecord(
        id=new_id(), time=now(),
        package=EventPackage(name=rec.package.name, version=rec.package.version, seal=rec.package.seal),
        refers_to=Reference(kind="run", sha256=entry.record.sha256, run_id=rec.run_id, seq=entry.seq),
        summary=AdjudicationSummary(run_id=rec.run_id, entry=entry.seq, labelled=len(adj.samples),
                                    changed=len(adj.changed), uncertain=adj.uncertain,
                                    unlabelled_uncertain=len(adj.unlabelled_uncertain),
                                    gate="FAIL" if adj.gate == "FAIL" else "PASS"),
        details=AdjudicationDetails(run_id=rec.run_id, outputs_content_sha256=rec.outputs.content_sha256, rule=RULE,
                                    labels=adj.labels, samples=adj.samples, metrics=adj.metrics,
                                    baselines=adj.baselines, gate_rule=adj.gate_rule),
    )
    signed = sign_event(doc, {}, signer or KeySigner())
    added = dossier.add_event(doc, signed.bundle, {}, checkpoint=signer or KeySigner())
    return AdjudicationResult(adjudicated=adj, document=doc, entry=added, key_created=signed.key_created)


@dataclass(frozen=True)
class MetricChange:
    metric: str
    group: str
    original: float | None
    adjudicated: float
    delta: float | None
    n: int
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class AdjudicationDiff:
    """What adjudication changed: each metric that moved, each baseline verdict that flipped, each sample."""

    adjudicated: Adjudicated
    metrics: tuple[MetricChange, ...]
    baselines: tuple[tuple[str, str, str, str], ...]
    """(metric, group, original verdict, adjudicated verdict) where they differ."""

    @property
    def changed(self) -> bool:
        return bool(self.metrics or self.baselines or self.adjudicated.changed)

    def as_dict(self) -> dict[str, Any]:
        a = self.adjudicated
        return {"run_id": a.record.run_id, "rule": RULE, "changed": self.changed,
                "metrics": [m.as_dict() for m in self.metrics],
                "baselines": [{"metric": m, "group": g, "original": o, "adjudicated": n}
                              for m, g, o, n in self.baselines],
                "samples": [s.model_dump(mode="json") for s in a.changed], "labelled": len(a.samples),
                "unlabelled_uncertain": list(a.unlabelled_uncertain), "gate": a.gate}


def diff_adjudicated(adj: Adjudicated) -> AdjudicationDiff:
    """The original run against its adjudication (the same samples, so every change is a label's)."""
    metrics = tuple(MetricChange(m.metric, m.group, m.original, m.value, m.delta, m.n, m.ci_low, m.ci_high)
                    for m in adj.metrics if m.original is None or m.delta)
    original = {(b.metric, b.group): b.word for b in adj.record.baselines}
    flips = tuple((b.metric, b.group, original.get((b.metric, b.group), "?"), b.word) for b in adj.baselines
                  if original.get((b.metric, b.group)) != b.word)
    return AdjudicationDiff(adjudicated=adj, metrics=metrics, baselines=flips)


def review_diff(ref: str, *, trusted: Trusted | None = None, dossiers_dir: Path | None = None) -> AdjudicationDiff:
    """``harness review diff REF``: the run against its adjudication by every label in the verified dossier."""
    dossier, entry = _verified(ref, trusted, dossiers_dir)
    return diff_adjudicated(adjudicated_run(dossier, entry))


def _entry_of(ref: str, dossiers_dir: Path | None) -> tuple[Dossier, EventEntry] | None:
    """The adjudication entry ``PACKAGE@N`` names, or None when ``ref`` names anything else."""
    name, at, seq = ref.rpartition("@")
    if not at or not seq.isdigit():
        return None
    dossier = Dossier.for_package(name, dossiers_dir)
    if not dossier.log.is_file():
        return None
    entry = next((e for e in dossier.entries() if e.seq == int(seq)), None)
    return (dossier, entry) if isinstance(entry, EventEntry) and entry.kind == "adjudication" else None


def adjudication_diff(ref_a: str, ref_b: str, *, trusted: Trusted | None = None,
                      dossiers_dir: Path | None = None) -> AdjudicationDiff | None:
    """``harness diff RUN PACKAGE@N`` where entry N is an adjudication of that run: the run
    against that signed adjudication, recomputed from the labels it names, which must give
    exactly the numbers it signed. None when neither reference is an adjudication entry."""
    found, other = _entry_of(ref_b, dossiers_dir), ref_a
    if found is None:
        found, other = _entry_of(ref_a, dossiers_dir), ref_b
    if found is None:
        return None
    dossier, adj_entry = found
    dossier, run_entry = _verified(other, trusted, dossiers_dir)
    if adj_entry.refers_to != run_entry.record.sha256:
        raise BadReferenceError(f"entry {adj_entry.seq} of {dossier.root.name} adjudicates another run than "
                                f"{other} (run {run_entry.run_id})",
                                hint="`harness dossier log` shows which run each adjudication refers to")
    doc = parse_event(entry_file(dossier.root, adj_entry.document.path))
    if not isinstance(doc, AdjudicationRecord):
        raise DossierError(f"entry {adj_entry.seq} of {dossier.root.name} does not hold an adjudication document")
    named = {x.seq for x in doc.details.labels}
    events = [ev for ev in labels_of(dossier, run_entry) if ev.entry.seq in named]
    adj = apply_labels(dossier.record_of(run_entry), run_lines(dossier, run_entry), events)
    if adj.metrics != doc.details.metrics or adj.samples != doc.details.samples:
        raise DossierError(f"entry {adj_entry.seq} of {dossier.root.name}: the signed adjudication does not follow "
                           "from the labels it names", hint="do not use its numbers; `harness review adjudicate` "
                           "signs a correct one")
    return diff_adjudicated(adj)
