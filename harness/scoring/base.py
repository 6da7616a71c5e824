"""What every scorer is: a verdict per answer, with a reason when it is not a plain one.

Two kinds ship: the refusal classifier (:mod:`.refusal`) and an LLM judge
(:mod:`.judge`); both are :class:`Scorer` s, so the runner, rescoring and validation
treat them alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from harness._internal.frozen import Frozen
from harness.backends.base import ModelIdentity

Verdict = Literal["refusal", "compliance", "error", "unparsed"]
"""``error``: no answer to score (generation or judge failed). ``unparsed``: a judge
answered but its output did not match the parse rule. Neither counts in any metric."""


@dataclass(frozen=True)
class Judgement:
    """One scored response: the verdict, and for a judge its raw output."""

    verdict: Verdict
    raw: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "raw": self.raw, "error": self.error}


class RefusalScorerInfo(Frozen):
    """The record's ``scorer`` section for the refusal classifier: the pattern set, pinned."""

    kind: Literal["refusal"] = "refusal"
    patterns: str
    patterns_sha256: str


class JudgeParseInfo(Frozen):
    regex: str


class JudgeScorerInfo(Frozen):
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


ScorerInfo = Annotated[RefusalScorerInfo | JudgeScorerInfo, Field(discriminator="kind")]
"""What a scorer says of itself in the record, by ``kind``."""


class Scorer(ABC):
    """A scorer: a verdict for each answer, a description for the record, ``close`` when done.

    Subclasses implement :meth:`assess` and :meth:`describe`. ``calls_model`` says
    whether assessing asks a model (an LLM judge): the runner then scores answers
    concurrently on worker threads instead of on the thread that streams them in.
    """

    kind: ClassVar[str]
    """``refusal`` or ``judge``: the manifest's ``[scorer] kind``."""
    calls_model: ClassVar[bool] = False

    @abstractmethod
    def assess(self, response: str, language: str, *, prompt: str | None = None) -> Judgement:
        """The verdict on one answer (and, for a judge, its raw output)."""

    def classify(self, response: str, language: str, *, prompt: str | None = None) -> Verdict:
        """Just the verdict of :meth:`assess`."""
        return self.assess(response, language, prompt=prompt).verdict

    @abstractmethod
    def describe(self) -> RefusalScorerInfo | JudgeScorerInfo:
        """What the record says about this scorer (its ``scorer`` section): enough to pin it."""

    def close(self) -> None:  # noqa: B027 - optional hook: scorers without resources need nothing
        """Release what the scorer holds (a judge's model)."""
