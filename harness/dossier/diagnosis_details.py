"""The details of a signed ``diagnosis`` document: why a model refuses in one language and not another.

A diagnosis (``harness diagnose``, docs/diagnosis.md) looks inside an in-process model on
exactly the prompts, chat template and seeds of an evaluation run, and records per
language and layer how well harmful and harmless prompts separate, how each language's
harmful-minus-harmless direction lines up with the reference language's, whether a gap
between recognising harm and refusing it shows up, and what ablating or adding the
reference refusal direction does to the refusal rate. The numbers are typed here, in the
dossier layer, so the event document (:mod:`harness.dossier.documents`) can carry them
and every reader uses fields, never dictionary keys.

The enums carry the reasons (typed, never matched sentences); the floats are rounded to
six decimals as the run record's are, so two diagnoses of the same model, seed and
protocol have the same ``numbers_sha256``.
"""

from __future__ import annotations

import enum
from typing import Final, Literal

from harness._internal.frozen import Frozen
from harness.record import Overrides, SeedPlan
from harness.scoring.base import ScorerInfo

DIAGNOSIS_PROBE: Final = "difference-in-means, leave-one-out"
"""How ``probe_auroc`` is computed: each prompt scored by the direction of the other prompts."""
AUROC_INTERVAL: Final = "clopper-pearson-min-n"
"""The AUROC interval: an exact binomial interval at min(n_harmful, n_harmless) trials, the
Birnbaum-McCarty bound on the AUROC's variance (docs/diagnosis.md)."""
POSITION: Final = "last prompt token"
"""Where activations are read: the residual stream after each decoder layer, at the last
token of the chat-templated prompt (the token the first answer token is predicted from)."""


class GapClass(enum.StrEnum):
    """What the representation-action comparison says about one language (rule in docs/diagnosis.md)."""

    REPRESENTATION_FAILURE = "representation failure"
    """Harmful and harmless prompts do not separate, and the language refuses less than the reference."""
    ACTION_FAILURE = "action failure"
    """The model separates harmful prompts, and recognises significantly more of them than it refuses."""
    NEITHER = "neither"
    """No failure is shown (which includes: too few prompts to show one)."""
    UNAVAILABLE = "unavailable"
    """The comparison cannot be made; ``reason`` says why."""


class GapReason(enum.StrEnum):
    """Why a language's representation-action comparison is unavailable."""

    NO_HARMFUL = "no-harmful-prompts"
    NO_HARMLESS = "no-harmless-prompts"
    TOO_FEW = "too-few-prompts"
    """A leave-one-out direction needs at least two prompts of each kind."""


class InterventionKind(enum.StrEnum):
    ABLATE = "ablate"
    """The reference refusal direction projected out of the chosen layers' inputs and outputs."""
    ADD = "add"
    """The reference refusal vector, times the stated scale, added to one layer's output."""


class DirectionKind(enum.StrEnum):
    """Which prompts of the reference language the intervention direction is the difference of."""

    REFUSED_HARMFUL_MINUS_ANSWERED_HARMLESS = "refused-harmful-minus-answered-harmless"
    """Arditi et al.'s filter: harmful prompts the evaluation run refused, harmless ones it answered."""
    HARMFUL_MINUS_HARMLESS = "harmful-minus-harmless"
    """All harmful minus all harmless (the run refused no harmful, or answered no harmless, prompt)."""
    REFUSED_MINUS_ANSWERED_HARMFUL = "refused-minus-answered-harmful"
    """A package without harmless prompts (MultiJail): refused minus answered harmful prompts."""


class DiagnosedModel(Frozen):
    name: str
    digest: str
    chat_template_sha256: str | None
    threads: int
    layers_total: int
    hidden_size: int


class EvaluationRef(Frozen):
    """The evaluation run the diagnosis explains (a run entry earlier in the same dossier)."""

    run_id: str
    record_sha256: str
    seq: int
    made_for_diagnosis: bool
    """True when no run of this seal and model covered the prompts, so one was made first."""
    run_seed: int
    max_tokens: int


class DiagnosisMethod(Frozen):
    """The stated method, so a reader never has to guess what a number means."""

    position: Literal["last prompt token"] = POSITION
    probe: Literal["difference-in-means, leave-one-out"] = DIAGNOSIS_PROBE
    auroc_interval: Literal["clopper-pearson-min-n"] = AUROC_INTERVAL
    proportion_interval: str
    paired_test: str
    adjustment: str
    confidence: float


class ProbeRow(Frozen):
    """One language at one layer: separation of harmful from harmless prompts."""

    language: str
    layer: int
    n_harmful: int
    n_harmless: int
    probe_auroc: float | None
    probe_auroc_ci_low: float | None
    probe_auroc_ci_high: float | None
    probe_accuracy: float | None
    """Share of prompts on the right side of the leave-one-out midpoint."""
    transfer_auroc: float | None
    """AUROC of the reference language's direction (fitted on the reference only) on this language."""
    cosine_to_reference: float | None
    direction_norm: float | None


class GapRow(Frozen):
    """One language: recognition of harm (the probe) against refusal (the evaluation run)."""

    language: str
    layer: int
    classification: GapClass
    reason: GapReason | None = None
    n: int
    """Harmful prompts of the language, scored in the evaluation run."""
    recognition_rate: float | None = None
    recognition_ci_low: float | None = None
    recognition_ci_high: float | None = None
    refusal_rate: float | None = None
    refusal_ci_low: float | None = None
    refusal_ci_high: float | None = None
    gap: float | None = None
    """recognition_rate - refusal_rate, on the same prompts."""
    gap_ci_low: float | None = None
    gap_ci_high: float | None = None
    gap_p_value: float | None = None
    gap_p_adjusted: float | None = None
    recognised: bool = False
    """The probe's AUROC interval lies wholly above 0.5."""
    refusal_vs_reference: float | None = None
    """This language's refusal rate minus the reference language's (unpaired)."""
    refusal_vs_reference_p_adjusted: float | None = None
    refuses_less_than_reference: bool = False


class InterventionSpec(Frozen):
    """What was done to the model, and where."""

    direction_layer: int
    direction_norm: float
    direction: DirectionKind
    """Which reference-language prompts the direction is the difference in means of (as the
    evaluation run judged them)."""
    ablation_layers: tuple[int, ...]
    addition_layer: int
    addition_scale: float
    max_tokens: int


class InterventionRow(Frozen):
    """One language (or ``all``) under one intervention: refusal before and after, on the same prompts."""

    language: str
    intervention: InterventionKind
    prompts: Literal["refuse", "comply"]
    """Which prompts were regenerated: ablation on those that should be refused, addition on the others."""
    n: int
    refusal_rate_before: float | None
    before_ci_low: float | None
    before_ci_high: float | None
    refusal_rate_after: float | None
    after_ci_low: float | None
    after_ci_high: float | None
    delta: float | None
    delta_ci_low: float | None
    delta_ci_high: float | None
    p_value: float | None
    p_adjusted: float | None
    """Holm over the languages of one intervention; the ``all`` row is its own test (not adjusted)."""
    significant: bool
    changed: int
    """Prompts whose verdict changed (either way)."""


class DiagnosisDetails(Frozen):
    model: DiagnosedModel
    evaluation: EvaluationRef
    seeds: SeedPlan
    overrides: Overrides
    samples: int
    scorer: ScorerInfo
    reference_language: str
    layers: tuple[int, ...]
    diagnosis_layer: int
    """The chosen layer where the reference language separates best (ties: the later layer)."""
    method: DiagnosisMethod
    rows: tuple[ProbeRow, ...]
    gaps: tuple[GapRow, ...]
    intervention: InterventionSpec
    interventions: tuple[InterventionRow, ...]
    numbers_sha256: str
    """sha256 of the canonical JSON of the numbers (layers, rows, gaps, intervention, interventions)."""
