"""The base of every on-disk format: frozen (a parsed file cannot be edited in memory by
accident) and strict about keys (an unknown key is an error, never silently dropped, so a
file from a newer or altered writer is refused instead of half read)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Frozen pydantic model that forbids unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")
