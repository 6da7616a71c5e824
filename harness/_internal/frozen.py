"""The base of every on-disk format: frozen (a parsed file cannot be edited in memory by
accident) and strict about keys (an unknown key is an error, never silently dropped, so a
file from a newer or altered writer is refused instead of half read)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class Frozen(BaseModel):
    """Frozen pydantic model that forbids unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Sparse(Frozen):
    """A frozen model whose JSON holds only the fields that were given.

    Some sections of the run record hold different keys for different backends (a
    transformers engine has a ``torch`` version, a served one a ``served_model``), and
    a given key may be ``null`` on purpose. Writing exactly the fields that were set
    (when built, or when read from a file) keeps every file byte for byte what the
    writer meant, and a file read and written again unchanged.
    """

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        given = self.model_fields_set
        return {k: v for k, v in data.items() if k in given}
