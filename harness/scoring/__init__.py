"""Scoring: a verdict per answer, metrics with intervals per group, baseline checks.

Modules: :mod:`.base` (the scorer contract and verdicts), :mod:`.refusal` (the
versioned pattern classifier), :mod:`.judge` (a pinned LLM judge), :mod:`.factory`
(the scorer a manifest names), :mod:`.metrics` (metrics, baselines, language
comparisons), :mod:`.stats` (every interval and test: Clopper-Pearson, McNemar, Newcombe, Holm, the gate's power),
:mod:`.validation` (agreement with human labels), :mod:`.agreement` (that agreement per
language, with intervals), :mod:`.behaviours` (binary or three behaviours, uncertain marks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.scoring.agreement import LabelledItem, agreement_by_language, validate_by_language
    from harness.scoring.base import Judgement, Scorer, Verdict
    from harness.scoring.factory import make_scorer, resolve_scorer
    from harness.scoring.judge import JudgeScorer
    from harness.scoring.metrics import (
        BaselineVerdict,
        Comparison,
        MetricValue,
        Scored,
        compute_metrics,
    )
    from harness.scoring.refusal import RefusalClassifier, load_patterns

__all__ = [
    "BaselineVerdict",
    "Comparison",
    "JudgeScorer",
    "Judgement",
    "LabelledItem",
    "MetricValue",
    "RefusalClassifier",
    "Scored",
    "Scorer",
    "Verdict",
    "agreement_by_language",
    "compute_metrics",
    "load_patterns",
    "make_scorer",
    "resolve_scorer",
    "validate_by_language",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "BaselineVerdict": "harness.scoring.metrics",
    "Comparison": "harness.scoring.metrics",
    "JudgeScorer": "harness.scoring.judge",
    "Judgement": "harness.scoring.base",
    "LabelledItem": "harness.scoring.agreement",
    "agreement_by_language": "harness.scoring.agreement",
    "validate_by_language": "harness.scoring.agreement",
    "MetricValue": "harness.scoring.metrics",
    "RefusalClassifier": "harness.scoring.refusal",
    "Scored": "harness.scoring.metrics",
    "Scorer": "harness.scoring.base",
    "Verdict": "harness.scoring.base",
    "compute_metrics": "harness.scoring.metrics",
    "load_patterns": "harness.scoring.refusal",
    "make_scorer": "harness.scoring.factory",
    "resolve_scorer": "harness.scoring.factory",
})
