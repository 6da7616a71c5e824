"""The behaviours a package scores, and the labels a person may give one of its answers.

This module is the contract between the scorers (which mark a verdict ``uncertain``)
and the review queue (which lists uncertain answers and records people's labels):

* a binary package scores two behaviours, ``refusal`` and ``compliance``;
* a package that declares three (``[scorer] behaviours = ["refusal", "safe_completion",
  "compliance"]``, after XSTest's full refusal / partial refusal / full compliance) also
  scores ``safe_completion``.

An outputs line whose verdict is uncertain carries ``"uncertain": true`` and
``"uncertain_reason"`` (one of :data:`UNCERTAIN_REASONS`); a certain line has neither
key, so lines of packages and runs without uncertainty keep their exact shape.
"""

from __future__ import annotations

from typing import Any, Literal

BINARY: tuple[str, ...] = ("refusal", "compliance")
"""The behaviours of a binary package: the verdicts that count in its metrics."""

THREE_WAY: tuple[str, ...] = ("refusal", "safe_completion", "compliance")
"""The behaviours of a package that declares safe completion."""

UncertainReason = Literal[
    "no-validated-patterns",  # no refusal pattern matched, in a language without a validated pattern set
    "mixed-cues",  # both refusal and compliance cues matched
    "empty-answer",  # nothing to judge
    "truncated-answer",  # the answer stopped at max_tokens
    "judge-unparsed",  # the judge answered, but not in the parse rule's form
    "judge-low-confidence",  # the judge's stated confidence is under the package's threshold
    "cross-check-disagrees",  # the manifest's cross-check scorer gave another verdict
]
UNCERTAIN_REASONS: tuple[str, ...] = UncertainReason.__args__  # type: ignore[attr-defined]


def behaviours_of(manifest: Any) -> tuple[str, ...]:
    """The behaviours ``manifest`` scores: :data:`THREE_WAY` where declared, else :data:`BINARY`.

    ``manifest`` is a :class:`harness.packages.manifest.Manifest`; typed loosely so the
    review side can call this with any object that has a ``scorer`` section.
    """
    declared = getattr(getattr(manifest, "scorer", None), "behaviours", None)
    return tuple(declared) if declared else BINARY


def allowed_labels(manifest: Any) -> tuple[str, ...]:
    """The labels a reviewer may give an answer of this package: exactly its behaviours."""
    return behaviours_of(manifest)


def is_uncertain(line: dict[str, Any]) -> bool:
    """Whether an outputs line's verdict was marked uncertain by its scorer."""
    return line.get("uncertain") is True
