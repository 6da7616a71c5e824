"""What every scorer is: a verdict per answer, with a reason when it is not a plain one.

Two kinds ship: the refusal classifier (:mod:`.refusal`) and an LLM judge
(:mod:`.judge`); both are :class:`Scorer` s, so the runner, rescoring and validation
treat them alike.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from functools import cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from harness.backends.base import ModelIdentity
from harness.packages.scorer_spec import WithoutAbsent
from harness.scoring.behaviours import UncertainReason

Verdict = Literal["refusal", "safe_completion", "compliance", "error", "unparsed"]
"""``safe_completion`` only in packages that declare three behaviours (docs/judge.md).
``error``: no answer to score (generation or judge failed). ``unparsed``: a judge
answered but its output did not match the parse rule. Neither counts in any metric."""

VerdictReason = Literal[
    "refusal-pattern",  # a refusal pattern matched anywhere in the opening
    "refusal-prefix",  # a prefix pattern matched at the very start
    "safe-alternative",  # a refusal pattern and a safe-alternative cue: safe completion
    "no-refusal-pattern",  # nothing matched: read as compliance
    "judge-parsed",  # the judge's output matched the parse rule
    "judge-unparsed",  # it did not
    "judge-error",  # the judge could not be asked
]
"""Why a verdict is what it is: typed, so reports can count reasons without parsing text."""


@dataclass(frozen=True)
class Judgement:
    """One scored response: the verdict, why, whether it is uncertain, and a judge's raw output.

    ``uncertain`` is None for a verdict the scorer stands by, else the rule that made it
    doubt (:data:`harness.scoring.behaviours.UncertainReason`); ``reason`` says how the
    verdict was reached and ``matched`` the pattern or cue that decided it, for a person
    reviewing the answer. Only ``verdict`` and ``uncertain`` reach the outputs file.
    """

    verdict: Verdict
    raw: str | None = None
    error: str | None = None
    uncertain: UncertainReason | None = None
    reason: VerdictReason | None = None
    matched: str | None = None
    confidence: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict, "raw": self.raw, "error": self.error}
        return out | ({"uncertain": self.uncertain} if self.uncertain is not None else {})


class RefusalScorerInfo(WithoutAbsent):
    """The record's ``scorer`` section for the refusal classifier: the pattern set, pinned.

    ``behaviours`` (three-way packages only) and ``cross_check`` (the pinned description of
    a cross-check scorer, when the package declares one) are absent otherwise."""

    _optional: ClassVar[frozenset[str]] = frozenset({"behaviours", "cross_check"})
    kind: Literal["refusal"] = "refusal"
    patterns: str
    patterns_sha256: str
    behaviours: tuple[str, ...] | None = None
    cross_check: CrossCheckInfo | None = None


class JudgeParseInfo(WithoutAbsent):
    """The judge's parse rule; ``confidence`` and ``min_confidence`` only where the package states them."""

    _optional: ClassVar[frozenset[str]] = frozenset({"confidence", "min_confidence"})
    regex: str
    confidence: str | None = None
    min_confidence: float | None = None


class JudgeScorerInfo(WithoutAbsent):
    """The record's ``scorer`` section for an LLM judge: its pin, the identity that
    answered, the template (by digest) and the parse rule."""

    kind: Literal["judge"] = "judge"
    backend: str
    model: str
    revision: str | None
    weights_digest: str | None
    identity_digest: str
    identity: ModelIdentity
    template: str
    template_sha256: str
    parse: JudgeParseInfo
    max_tokens: int
    behaviours: tuple[str, ...] | None = None
    cross_check: CrossCheckInfo | None = None

    _optional: ClassVar[frozenset[str]] = frozenset({"behaviours", "cross_check"})


CrossCheckInfo = Annotated[RefusalScorerInfo | JudgeScorerInfo, Field(discriminator="kind")]
"""The pinned description of a package's cross-check scorer (never itself cross-checked)."""
RefusalScorerInfo.model_rebuild()
JudgeScorerInfo.model_rebuild()


ScorerInfo = Annotated[RefusalScorerInfo | JudgeScorerInfo, Field(discriminator="kind")]
"""What a scorer says of itself in the record, by ``kind``."""


@cache
def _takes_finish_reason(cls: type[Scorer]) -> bool:
    params = inspect.signature(cls.assess).parameters
    return "finish_reason" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class Scorer(ABC):
    """A scorer: a verdict for each answer, a description for the record, ``close`` when done.

    Subclasses implement :meth:`assess` and :meth:`describe`. ``calls_model`` says
    whether assessing asks a model (an LLM judge): the runner then scores answers
    concurrently on worker threads instead of on the thread that streams them in.
    """

    kind: ClassVar[str]
    """``refusal`` or ``judge``: the manifest's ``[scorer] kind``."""
    calls_model: ClassVar[bool] = False

    behaviours: tuple[str, ...] = ("refusal", "compliance")
    """The verdicts this scorer gives for an answer (three with ``safe_completion``)."""

    @abstractmethod
    def assess(
        self, response: str, language: str, *, prompt: str | None = None, finish_reason: str | None = None
    ) -> Judgement:
        """The verdict on one answer (and, for a judge, its raw output). ``finish_reason``
        (the backend's, e.g. "length") lets the scorer mark a truncated answer uncertain."""

    def classify(self, response: str, language: str, *, prompt: str | None = None) -> Verdict:
        """Just the verdict of :meth:`assess`."""
        return self.assess(response, language, prompt=prompt).verdict

    cross_check: Scorer | None = None
    """The package's cross-check scorer (``[scorer.cross_check]``), set by the factory."""

    def score(
        self, response: str, language: str, *, prompt: str | None = None, finish_reason: str | None = None
    ) -> Judgement:
        """:meth:`assess`, then the cross-check: what the runner, rescoring and validation call.

        A scorer written before ``finish_reason`` existed (a subclass whose ``assess``
        does not take it) is called without it. When the cross-check gives another
        behaviour, the verdict stands and is marked ``cross-check-disagrees`` (unless
        already uncertain for another reason).
        """
        if finish_reason is not None and _takes_finish_reason(type(self)):
            j = self.assess(response, language, prompt=prompt, finish_reason=finish_reason)
        else:
            j = self.assess(response, language, prompt=prompt)
        if self.cross_check is None or j.uncertain is not None:
            return j
        other = self.cross_check.score(response, language, prompt=prompt, finish_reason=finish_reason)
        if disagree(j.verdict, other.verdict, fine="safe_completion" in self.cross_check.behaviours):
            return replace(j, uncertain="cross-check-disagrees")
        return j

    def cross_check_info(self) -> RefusalScorerInfo | JudgeScorerInfo | None:
        """The cross-check's pinned description, for the record's ``scorer.cross_check``."""
        return None if self.cross_check is None else self.cross_check.describe()

    @property
    def marks_uncertainty(self) -> bool:
        """Whether this scorer applies an uncertainty rule (docs/uncertainty.md). Scorers
        pinned before the rule existed (refusal-patterns@1.0.0 and 2.0.0, without a
        cross-check) do not, so their outputs lines and records keep their exact shape."""
        return self.cross_check is not None

    @abstractmethod
    def describe(self) -> RefusalScorerInfo | JudgeScorerInfo:
        """What the record says about this scorer (its ``scorer`` section): enough to pin it."""

    def close(self) -> None:
        """Release what the scorer holds (a judge's model, a cross-check's)."""
        if self.cross_check is not None:
            self.cross_check.close()


def disagree(verdict: str, other: str, *, fine: bool) -> bool:
    """Whether two scorers gave different behaviours. Verdicts that are no behaviour
    (error, unparsed) disagree with nothing: the cross-check could not say. ``fine``
    False (the cross-check scores only refusal/compliance) compares on that scale,
    reading safe completion as a refusal."""
    behaviours = ("refusal", "safe_completion", "compliance")
    if verdict not in behaviours or other not in behaviours:
        return False
    if not fine:
        verdict = "refusal" if verdict == "safe_completion" else verdict
        other = "refusal" if other == "safe_completion" else other
    return verdict != other
