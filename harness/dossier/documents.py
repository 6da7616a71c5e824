"""The signed event documents of a dossier, one typed model per kind (docs/dossier.md).

A run is not the only fact an auditor needs: that someone re-ran it and got the same
answers, re-scored it with another judge, moved the package's baselines, or reviewed
it before its numbers were used are facts too. Each is a ``<kind>.json`` document with a
short ``summary`` (copied into its dossier entry, what ``dossier log`` shows) and
``details``; both are typed per kind here, so readers use fields, never dictionary
keys, and a document that does not fit its kind is refused when it is read.
"""

from __future__ import annotations

import enum
from typing import Annotated, Final, Literal

from pydantic import Field, JsonValue, TypeAdapter

from harness._internal.frozen import Frozen
from harness._internal.hashing import canonical_json
from harness._internal.strictjson import check_strict
from harness.dossier.diagnosis_details import DiagnosisDetails
from harness.dossier.review_details import (
    AdjudicationDetails,
    AdjudicationSummary,
    LabelDetails,
    LabelSummary,
)
from harness.errors import RecordError
from harness.packages.manifest import Baseline
from harness.scoring.base import ScorerInfo
from harness.scoring.metrics import MetricValue

EVENT_SCHEMA_VERSION: Final[Literal[1]] = 1
BUNDLE_SUFFIX = ".sigstore.json"
"""An event's bundle sits beside its document: ``<kind>.json`` and ``<kind>.sigstore.json``."""
EventKind = Literal["reproduction", "rescore", "baseline", "review", "diagnosis", "imported", "label", "adjudication"]
EVENT_KINDS: tuple[EventKind, ...] = ("reproduction", "rescore", "baseline", "review", "diagnosis", "imported", "label",
                                      "adjudication")


class EventPackage(Frozen):
    """The package the event is about (for a baseline change: the package after it)."""

    name: str
    version: str
    seal: str


class Reference(Frozen):
    """What the event is about: a run record (by its sha256), a dossier entry (by its line's sha256),
    or, for an imported result, the file it was imported from (by its sha256)."""

    kind: Literal["run", "entry", "source"]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    run_id: str | None = None
    seq: int | None = None


class EventFile(Frozen):
    """A file the event brings (re-scored outputs); signed as a subject of the statement."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


# ------------------------------------------------------------------ reproduction


class ReproductionVerdict(enum.StrEnum):
    """The outcome of ``harness reproduce`` (the value is what documents and people read)."""

    EXACT = "REPRODUCED"
    WITHIN_TOLERANCE = "REPRODUCED WITHIN TOLERANCE"
    NOT_REPRODUCED = "NOT REPRODUCED"


class ReproductionSummary(Frozen):
    verdict: ReproductionVerdict
    exact: bool
    original_run: str
    rerun: str
    samples: int
    differing_samples: int
    metrics_out_of_tolerance: int


class OriginalRun(Frozen):
    run_id: str
    record_sha256: str
    seq: int
    outputs_content_sha256: str
    signer: str


class RerunInfo(Frozen):
    run_id: str
    record_sha256: str
    seq: int
    outputs_content_sha256: str


class EnvironmentInfo(Frozen):
    """Where the re-run ran: ``mode`` is ``current`` or ``rebuilt`` (from the lockfile)."""

    mode: str
    lockfile_sha256: str | None
    matched_before: bool | None
    rerun_lockfile_matches: bool


class ModelCheck(Frozen):
    recorded_digest: str
    used_digest: str
    allow_mismatch: bool


class ToleranceInfo(Frozen):
    """The package's reproduction rule, as applied."""

    rule: Literal["absolute", "ci"]
    tolerance: float
    stated_in_package: bool
    description: str


class SampleDifference(Frozen):
    """A sample whose answer or verdict differs: the differing fields of both runs' lines."""

    id: str
    language: str
    fields: tuple[str, ...]
    original: dict[str, JsonValue]
    rerun: dict[str, JsonValue]


class MetricCheck(Frozen):
    """One metric of the original run against the re-run, under the tolerance rule."""

    metric: str
    group: str
    original: float | None
    rerun: float | None
    delta: float | None
    original_ci: tuple[float, float] | None
    within_tolerance: bool


class ReproductionDetails(Frozen):
    original: OriginalRun
    rerun: RerunInfo
    environment: EnvironmentInfo
    model: ModelCheck
    not_exact_because: tuple[str, ...]
    """Why the reproduction is not exact, in words (the typed reasons' messages)."""
    tolerance: ToleranceInfo
    first_differing_samples: tuple[SampleDifference, ...]
    metrics: tuple[MetricCheck, ...]


# ------------------------------------------------------------------ rescore


class RescoreSummary(Frozen):
    original_run: str
    scorer: str
    samples: int
    changed_verdicts: int
    unparsed: int


class RescoredOutputs(Frozen):
    path: str
    sha256: str
    content_sha256: str


class RescoredMetric(MetricValue):
    """A metric recomputed from the re-scored verdicts, beside the original run's value."""

    original: float | None
    delta: float | None


class ChangedVerdict(Frozen):
    id: str
    language: str
    original: str
    rescored: str
    response: str
    """The first 200 characters of the answer."""


class RescoreDetails(Frozen):
    scorer: ScorerInfo
    original_scorer: ScorerInfo
    regenerated: bool
    outputs: RescoredOutputs
    metrics: tuple[RescoredMetric, ...]
    first_changed: tuple[ChangedVerdict, ...]


# ------------------------------------------------------------------ baseline


class BaselineSummary(Frozen):
    from_run: str
    old_seal: str
    new_seal: str
    changed: int


class ModelName(Frozen):
    name: str
    digest: str


class BaselineChange(Frozen):
    model: str
    metric: str
    group: str
    old: float | None
    new: float


class BaselineDetails(Frozen):
    model: ModelName
    before: tuple[Baseline, ...]
    after: tuple[Baseline, ...]
    changes: tuple[BaselineChange, ...]


# ------------------------------------------------------------------ review


class ReviewSummary(Frozen):
    entry: int
    entry_kind: str
    entry_id: str
    reviewer: str
    note: str


class ReviewDetails(Frozen):
    reviewer: str
    note: str
    checked: tuple[str, ...]
    dossier_head: str
    entry_signer: str | None


# ------------------------------------------------------------------ diagnosis


class DiagnosisSummary(Frozen):
    """What ``dossier log`` shows of a diagnosis (details: :mod:`harness.dossier.diagnosis_details`)."""

    evaluation_run: str
    model: str
    reference_language: str
    layers: tuple[int, ...]
    diagnosis_layer: int
    representation_failures: tuple[str, ...]
    action_failures: tuple[str, ...]
    numbers_sha256: str


# ------------------------------------------------------------------ imported


class ImportedSummary(Frozen):
    """What ``dossier log`` shows of a result imported from another tool (never a reproduction)."""

    source_format: Literal["inspect", "lm-eval"]
    producer: str
    """The tool that wrote the source, as it names itself (e.g. ``inspect_ai 0.3.285``); not verified."""
    task: str
    model: str
    samples: int
    scored: int
    status: Literal["imported, not reproduced"] = "imported, not reproduced"


class ImportedSource(Frozen):
    """The imported file, stored beside the document and signed as one of its subjects."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int
    samples_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """sha256 of the RFC 8785 list of the samples as read (id order): what the metrics were computed from."""


class ImportedDetails(Frozen):
    source: ImportedSource
    proven: tuple[str, ...]
    """What the harness checked about the source, in words."""
    not_proven: tuple[str, ...]
    """What an imported result cannot prove (no seal, no lockfile, no model digest, ...), in words."""
    spec: dict[str, JsonValue]
    """The source's own description of the run (task, model, created, run id, ...), as it says, unverified."""
    metrics: tuple[MetricValue, ...]
    """Computed here from the per-sample scores (Clopper-Pearson), overall and per language/category when given."""


# ------------------------------------------------------------------ documents


class _Event(Frozen):
    schema_version: Literal[1] = EVENT_SCHEMA_VERSION
    id: str
    time: str
    package: EventPackage
    refers_to: Reference
    files: tuple[EventFile, ...] = ()

    def to_bytes(self) -> bytes:
        """The document's canonical JSON: what is stored and signed."""
        return canonical_json(self.model_dump(mode="json"))

    @property
    def document_name(self) -> str:
        return f"{self.kind}.json"  # type: ignore[attr-defined]  # every subclass has a kind


class ReproductionRecord(_Event):
    """``reproduction.json``: a signed run re-run as recorded, and how close it came."""

    kind: Literal["reproduction"] = "reproduction"
    summary: ReproductionSummary
    details: ReproductionDetails


class RescoreRecord(_Event):
    """``rescore.json``: a run's recorded answers scored again by another scorer."""

    kind: Literal["rescore"] = "rescore"
    summary: RescoreSummary
    details: RescoreDetails


class BaselineRecord(_Event):
    """``baseline.json``: a package's baselines moved to a run's values (and resealed)."""

    kind: Literal["baseline"] = "baseline"
    summary: BaselineSummary
    details: BaselineDetails


class ReviewRecord(_Event):
    """``review.json``: a person's signed review of one dossier entry."""

    kind: Literal["review"] = "review"
    summary: ReviewSummary
    details: ReviewDetails


class DiagnosisRecord(_Event):
    """``diagnosis.json``: a white-box diagnosis of an evaluation run's per-language refusals."""

    kind: Literal["diagnosis"] = "diagnosis"
    summary: DiagnosisSummary
    details: DiagnosisDetails


class ImportedRecord(_Event):
    """``imported.json``: a result another tool produced, signed here as imported (not reproduced)."""

    kind: Literal["imported"] = "imported"
    summary: ImportedSummary
    details: ImportedDetails


class LabelRecord(_Event):
    """``label.json``: people's labels of answers of one run (one command or one imported file).

    Types: :mod:`harness.dossier.review_details`; docs/review.md."""

    kind: Literal["label"] = "label"
    summary: LabelSummary
    details: LabelDetails


class AdjudicationRecord(_Event):
    """``adjudication.json``: a run's metrics and baselines recomputed with its latest human labels,
    beside the original record (which it never replaces)."""

    kind: Literal["adjudication"] = "adjudication"
    summary: AdjudicationSummary
    details: AdjudicationDetails


AnyEvent = (ReproductionRecord | RescoreRecord | BaselineRecord | ReviewRecord | DiagnosisRecord | ImportedRecord
            | LabelRecord | AdjudicationRecord)

EventRecord = Annotated[AnyEvent, Field(discriminator="kind")]
"""Any signed event document; ``kind`` picks the model."""

EventSummary = (ReproductionSummary | RescoreSummary | BaselineSummary | ReviewSummary | DiagnosisSummary
                | ImportedSummary | LabelSummary | AdjudicationSummary)
"""The part of an event document that its dossier entry repeats."""

_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(EventRecord)


def parse_event_bytes(raw: bytes) -> AnyEvent:
    """An event document from its JSON (raises pydantic's ValidationError; RecordError for
    duplicate keys or NaN, which would let two parsers read two different documents)."""
    try:
        check_strict(raw)
    except ValueError as e:
        raise RecordError(f"an event document is not strict JSON ({e})",
                          hint="a signed document must mean one thing to every parser; do not trust it") from None
    return _EVENT.validate_json(raw)
