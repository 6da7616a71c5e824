"""The parts of the two review documents: human labels of single answers, and adjudications.

A scorer can mark an answer ``uncertain`` (:mod:`harness.scoring.behaviours`); a person
then labels it. Each ``label`` document is one signed act of labelling (one command, or
one imported file, all or nothing), naming the run by its record digest and, per sample,
the label, the note, who gave it, and what the scorer had said. An ``adjudication``
document recomputes the run's metrics and baselines with the latest label of each
labelled sample in place of the scorer's verdict; it names every label entry it used
by the digest of its log line, so ``dossier verify`` can check that they came before it.
The original record is never touched: both documents sit beside it in the dossier.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness._internal.frozen import Frozen
from harness.scoring.metrics import BaselineVerdict, MetricValue

LabelSourceKind = Literal["command", "csv", "jsonl", "form"]
"""How the labels arrived: ``harness review label``, an imported CSV or JSONL file, or the viewer's local form."""

_SHA256 = r"^[0-9a-f]{64}$"


class LabelSummary(Frozen):
    """What ``dossier log`` shows of a label event."""

    run_id: str
    entry: int
    """The sequence number of the labelled run's entry."""
    labels: int
    samples: tuple[str, ...]
    """The labelled sample ids (the first 20; ``labels`` counts them all)."""
    reviewers: tuple[str, ...]
    source: LabelSourceKind


class LabelSource(Frozen):
    """Where the labels came from; for a file, its name and sha256 as read."""

    kind: LabelSourceKind
    name: str | None = None
    sha256: str | None = Field(default=None, pattern=_SHA256)


class SampleLabel(Frozen):
    """One person's label of one answer of the run."""

    sample: str
    language: str
    label: str
    """One of the package's behaviours (:func:`harness.scoring.behaviours.allowed_labels`)."""
    reviewer: str
    note: str = ""
    scorer_verdict: str
    """The verdict the run recorded for this sample, as the reviewer saw it."""
    uncertain_reason: str | None = None
    """Why the scorer was uncertain (None: the sample was not in the queue, labelled anyway)."""


class LabelDetails(Frozen):
    run_id: str
    outputs_content_sha256: str = Field(pattern=_SHA256)
    """The run's outputs, by the content digest its signed record states: what was labelled."""
    allowed: tuple[str, ...]
    """The labels the package allows (its behaviours) when these were given."""
    source: LabelSource
    labels: tuple[SampleLabel, ...] = Field(min_length=1)


class AdjudicationSummary(Frozen):
    """What ``dossier log`` shows of an adjudication."""

    run_id: str
    entry: int
    labelled: int
    """Samples with a human label (the latest of each counts)."""
    changed: int
    """Samples whose adjudicated verdict differs from the scorer's."""
    uncertain: int
    unlabelled_uncertain: int
    gate: Literal["PASS", "FAIL"]


class LabelEntryRef(Frozen):
    """A label event an adjudication used: its entry, id, and the sha256 of its log line."""

    seq: int
    id: str
    sha256: str = Field(pattern=_SHA256)


class AdjudicatedSample(Frozen):
    """A labelled sample: the scorer's verdict, the label that replaces it, and whose label it is."""

    id: str
    language: str
    category: str
    expected: str
    scorer_verdict: str
    label: str
    reviewer: str
    label_event: str
    """The id of the label event whose label counts (the latest for this sample)."""
    changed: bool


class AdjudicatedMetric(MetricValue):
    """A metric recomputed with the labels, beside the original run's value."""

    original: float | None
    delta: float | None


class AdjudicationDetails(Frozen):
    run_id: str
    outputs_content_sha256: str = Field(pattern=_SHA256)
    rule: str
    """How verdicts were adjudicated, in words (the latest label of a sample replaces the scorer's verdict)."""
    labels: tuple[LabelEntryRef, ...]
    samples: tuple[AdjudicatedSample, ...]
    metrics: tuple[AdjudicatedMetric, ...]
    baselines: tuple[BaselineVerdict, ...]
    gate_rule: str
