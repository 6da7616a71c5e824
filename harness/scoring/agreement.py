"""Agreement with human labels per language: accuracy, Cohen's kappa and the confusion
matrix, each with an interval.

A scorer validated in English says little about Hindi or Arabic, and the point of the
multilingual packages is those other languages; so agreement is reported per language
(and pooled), and a language with few labels shows a wide interval rather than a
confident number. Accuracy takes the Clopper-Pearson interval every rate of the harness
takes (:func:`harness.scoring.stats.proportion_ci`). Kappa takes the large-sample
standard error of Fleiss, Cohen and Everitt (1969), the one statsmodels' ``cohens_kappa``
reports, as a Wald interval clipped to [-1, 1]: closed form, so the same labels give the
same interval everywhere with no seed; docs/judge.md says where it is poor (small n,
kappa near 1).

Two ways in:

* :func:`agreement_by_language` takes verdicts already given (a recorded run's verdicts
  against the labels people gave in a dossier): ``(language, verdict, human_label)``;
* :func:`validate_by_language` scores :class:`LabelledItem` s with a scorer first.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from harness.errors import DataError
from harness.scoring.base import JudgeScorerInfo, RefusalScorerInfo, Scorer
from harness.scoring.behaviours import BINARY, THREE_WAY
from harness.scoring.stats import CI_METHOD, proportion_ci

KAPPA_CI_METHOD = "fleiss-cohen-everitt-wald"
"""How a kappa's interval is made: the large-sample SE of Fleiss, Cohen & Everitt (1969), Wald, clipped."""
POOLED = "pooled"
"""The key of the figures over all languages together."""


@dataclass(frozen=True, slots=True)
class LabelledItem:
    """One answer a person labelled: what the review half hands in from a dossier."""

    language: str
    prompt: str
    response: str
    human_label: str
    id: str = ""
    finish_reason: str | None = None


def _coarse(label: str, labels: Sequence[str]) -> str:
    """On a binary scale, a safe completion is a refusal (as XSTest's partial refusal is)."""
    return "refusal" if label == "safe_completion" and "safe_completion" not in labels else label


def kappa_with_se(cm: dict[tuple[str, str], int], labels: Sequence[str]) -> tuple[float | None, float | None]:
    """Cohen's kappa of ``cm[(verdict, human)]`` over ``labels``, and its large-sample SE.

    var = (A + B - C) / (n (1 - pe)^2), with p the cell proportions, r the verdict
    (row) and c the human (column) marginals:
    A = sum_i p_ii (1 - (r_i + c_i)(1 - k))^2, B = (1 - k)^2 sum_{i != j} p_ij (c_i + r_j)^2,
    C = (k - pe (1 - k))^2 (Fleiss, Cohen & Everitt 1969). None where kappa is undefined
    (no items, or chance agreement 1: both raters used one label only); the SE is None
    when one rater used a single label (the large-sample variance is then degenerate).
    """
    n = sum(cm.get((a, b), 0) for a in labels for b in labels)
    if n == 0:
        return None, None
    p = {(a, b): cm.get((a, b), 0) / n for a in labels for b in labels}
    r = {a: sum(p[a, b] for b in labels) for a in labels}
    c = {b: sum(p[a, b] for a in labels) for b in labels}
    po = sum(p[a, a] for a in labels)
    pe = sum(r[a] * c[a] for a in labels)
    if pe >= 1.0:
        return None, None
    k = (po - pe) / (1 - pe)
    if max(r.values()) >= 1.0 or max(c.values()) >= 1.0:
        # one rater used a single label: kappa is 0 by construction and the formula's
        # variance collapses to 0, which would print a certain [0, 0]; no interval instead
        return k, None
    a_term = sum(p[i, i] * (1 - (r[i] + c[i]) * (1 - k)) ** 2 for i in labels)
    b_term = (1 - k) ** 2 * sum(p[i, j] * (c[i] + r[j]) ** 2 for i in labels for j in labels if i != j)
    c_term = (k - pe * (1 - k)) ** 2
    var = max(0.0, (a_term + b_term - c_term) / (n * (1 - pe) ** 2))
    return k, math.sqrt(var)


@dataclass(frozen=True)
class LanguageAgreement:
    """Agreement of a scorer with people over one language's labelled answers.

    ``n`` counts every item; ``scored`` those whose verdict is one of ``labels`` (an
    ``error`` or ``unparsed`` verdict is counted in ``unscored``, never in accuracy or
    kappa). ``confusion[verdict][human]`` over ``labels``.
    """

    language: str
    labels: tuple[str, ...]
    n: int
    scored: int
    correct: int
    kappa: float | None
    kappa_se: float | None
    confusion: dict[str, dict[str, int]]
    unscored: dict[str, int] = field(default_factory=dict)
    confidence: float = 0.95

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.scored if self.scored else None

    @property
    def accuracy_ci(self) -> tuple[float, float] | None:
        return proportion_ci(self.correct, self.scored, self.confidence) if self.scored else None

    @property
    def kappa_ci(self) -> tuple[float, float] | None:
        if self.kappa is None or self.kappa_se is None:
            return None
        z = NormalDist().inv_cdf(1 - (1 - self.confidence) / 2)
        return max(-1.0, self.kappa - z * self.kappa_se), min(1.0, self.kappa + z * self.kappa_se)

    def as_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        acc, kci = self.accuracy_ci, self.kappa_ci
        return {
            "language": self.language, "labels": list(self.labels), "n": self.n, "scored": self.scored,
            "correct": self.correct, "accuracy": r(self.accuracy),
            "accuracy_ci": None if acc is None else [r(acc[0]), r(acc[1])], "accuracy_ci_method": CI_METHOD,
            "kappa": r(self.kappa), "kappa_se": r(self.kappa_se),
            "kappa_ci": None if kci is None else [r(kci[0]), r(kci[1])], "kappa_ci_method": KAPPA_CI_METHOD,
            "confidence": self.confidence, "confusion": self.confusion, "unscored": self.unscored,
        }


def language_agreement(language: str, pairs: Sequence[tuple[str, str]], labels: Sequence[str],
                       confidence: float = 0.95) -> LanguageAgreement:
    """Agreement over ``(verdict, human_label)`` pairs of one language (or pooled)."""
    labels = tuple(labels)
    coarse = [(_coarse(v, labels), _coarse(h, labels)) for v, h in pairs]
    cm: Counter[tuple[str, str]] = Counter(p for p in coarse if p[0] in labels)
    unscored = Counter(v for v, _ in coarse if v not in labels)
    kappa, se = kappa_with_se(cm, labels)
    return LanguageAgreement(
        language=language, labels=labels, n=len(coarse), scored=sum(cm.values()),
        correct=sum(cm[a, a] for a in labels), kappa=kappa, kappa_se=se,
        confusion={v: {h: cm[v, h] for h in labels} for v in labels}, unscored=dict(sorted(unscored.items())),
        confidence=confidence,
    )


def agreement_by_language(
    triples: Iterable[tuple[str, str, str]], labels: Sequence[str] = BINARY, *, confidence: float = 0.95,
) -> dict[str, LanguageAgreement]:
    """Per language (sorted) and :data:`POOLED`: agreement of ``(language, verdict, human_label)``.

    ``labels`` is the package's behaviours (:func:`harness.scoring.behaviours.behaviours_of`);
    on the binary scale a ``safe_completion`` verdict or label counts as ``refusal``. A
    human label outside ``labels`` (after that) is refused: it cannot be agreed with.
    """
    labels = tuple(labels)
    rows = list(triples)
    bad = sorted({h for _, _, h in rows if _coarse(h, labels) not in labels})
    if bad:
        raise DataError(f"human labels {bad} are not behaviours {list(labels)}",
                        hint="label each answer with one of the package's behaviours")
    by: dict[str, list[tuple[str, str]]] = {}
    for lang, verdict, human in rows:
        by.setdefault(lang, []).append((verdict, human))
    out = {lang: language_agreement(lang, by[lang], labels, confidence) for lang in sorted(by)}
    out[POOLED] = language_agreement(POOLED, [(v, h) for _, v, h in rows], labels, confidence)
    return out


@dataclass(frozen=True)
class LanguageValidation:
    """:func:`validate_by_language`'s result: the scorer, per-language figures, and each verdict."""

    scorer: RefusalScorerInfo | JudgeScorerInfo
    labels: tuple[str, ...]
    per_language: dict[str, LanguageAgreement]
    verdicts: tuple[tuple[str, str, str, str | None], ...]
    """(item id, language, verdict, uncertain reason) in input order."""

    def as_dict(self) -> dict[str, Any]:
        return {"scorer": self.scorer.model_dump(mode="json"), "labels": list(self.labels),
                "per_language": {k: v.as_dict() for k, v in self.per_language.items()}}


def validate_by_language(
    scorer: Scorer, items: Iterable[LabelledItem], *, labels: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> LanguageValidation:
    """Score every labelled item with ``scorer`` and report agreement per language.

    ``labels`` defaults to the scorer's behaviours; pass :data:`~harness.scoring.behaviours.THREE_WAY`
    for three-way labels. The review half calls this with the labels gathered in dossiers.
    """
    rows = list(items)
    if not rows:
        raise DataError("no labelled items to validate against", hint="label some answers first")
    chosen = tuple(labels) if labels is not None else tuple(scorer.behaviours)
    if chosen not in (BINARY, THREE_WAY):
        raise DataError(f"labels must be {list(BINARY)} or {list(THREE_WAY)}, not {list(chosen)}")
    verdicts = []
    for it in rows:
        j = scorer.score(it.response, it.language, prompt=it.prompt, finish_reason=it.finish_reason)
        verdicts.append((it.id, it.language, j.verdict, j.uncertain))
    per = agreement_by_language(((it.language, v[2], it.human_label) for it, v in zip(rows, verdicts, strict=True)),
                                chosen, confidence=confidence)
    return LanguageValidation(scorer=scorer.describe(), labels=chosen, per_language=per, verdicts=tuple(verdicts))


def format_languages(per_language: dict[str, LanguageAgreement]) -> str:
    """A plain-text table: one row per language, then pooled."""
    head = f"{'language':<10}{'n':>6}{'acc':>8}{'95% CI':>16}{'kappa':>8}{'95% CI':>18}{'unscored':>10}"
    lines = [head]
    for lang, a in per_language.items():
        acc, kci = a.accuracy_ci, a.kappa_ci
        lines.append(
            f"{lang:<10}{a.n:>6}{'n/a' if a.accuracy is None else f'{a.accuracy:.3f}':>8}"
            f"{'n/a' if acc is None else f'[{acc[0]:.3f}, {acc[1]:.3f}]':>16}"
            f"{'n/a' if a.kappa is None else f'{a.kappa:.3f}':>8}"
            f"{'n/a' if kci is None else f'[{kci[0]:.3f}, {kci[1]:.3f}]':>18}{sum(a.unscored.values()):>10}")
    lines.append("(accuracy: Clopper-Pearson; kappa: large-sample SE of Fleiss, Cohen & Everitt, Wald; docs/judge.md)")
    return "\n".join(lines)
