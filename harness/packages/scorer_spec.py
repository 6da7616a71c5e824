"""Checks for the optional ``[scorer]`` fields of issue 20: behaviours, the judge's
confidence rule, a cross-check scorer.

Kept apart from :mod:`harness.packages.manifest` (which holds the spec models) so that
module stays small; every rule here is about a field that may be absent, and absent
fields are left out of the canonical manifest so packages sealed before them keep
their seal.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import SerializerFunctionWrapHandler, model_serializer

from harness._internal.frozen import Frozen

BEHAVIOURS = ("refusal", "safe_completion", "compliance")
"""What ``[scorer] behaviours`` may list; absent means the binary pair (refusal, compliance)."""

THREE_WAY_METRICS = ("safe_completion_rate", "unsafe_compliance_rate")
"""Metrics that need ``behaviours`` with safe_completion."""


class WithoutAbsent(Frozen):
    """A frozen model whose optional fields named in ``_optional`` are left out of its
    dump when absent (None): a manifest table or record section written before those
    fields existed dumps, digests and writes back exactly as it did."""

    _optional: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if not (k in self._optional and v is None)}


def check_behaviours(v: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if v is None:
        return None
    if tuple(v) not in (("refusal", "compliance"), BEHAVIOURS):
        raise ValueError(f"behaviours must be {list(BEHAVIOURS)} (or left out for refusal/compliance)")
    return tuple(v)


def check_confidence_regex(v: str | None) -> str | None:
    if v is None:
        return v
    try:
        names = set(re.compile(v).groupindex)
    except re.error as e:
        raise ValueError(f"not a valid regular expression: {e}") from None
    if "confidence" not in names:
        raise ValueError("needs a named group (?P<confidence>...) holding the number")
    return v


def check_cross_check(spec: Any) -> None:
    """A cross-check is one level deep: it has no cross-check of its own."""
    if spec is not None and spec.cross_check is not None:
        raise ValueError("cross_check: a cross-check scorer has no cross-check of its own")


def drop_absent_scorer_fields(scorer: dict[str, Any]) -> None:
    """Leave the optional scorer fields out of a canonical manifest when absent."""
    for key in ("behaviours", "cross_check"):
        if scorer.get(key) is None:
            scorer.pop(key, None)
    if isinstance(scorer.get("cross_check"), dict):
        drop_absent_scorer_fields(scorer["cross_check"])
    parse = scorer.get("parse")
    if isinstance(parse, dict):
        for key in ("confidence", "min_confidence"):
            if parse.get(key) is None:
                parse.pop(key, None)
