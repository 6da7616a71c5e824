"""JSON parsing for documents that are signed or received: one text, one meaning.

Python's ``json`` keeps the last of two equal keys, other parsers keep the first, and
some refuse; a signer can therefore show one value to the harness and another to a
reviewer's tool. ``NaN`` and ``Infinity`` are not JSON at all (RFC 8259) but Python
accepts them, and a ``NaN`` metric compares unequal to everything. Every signed or
received JSON document (records, event documents, DSSE statements, archive indexes,
journal state) is parsed here, and both are refused with a :class:`StrictJSONError`
(a ``ValueError``, so callers that already catch malformed JSON catch these too).
"""

from __future__ import annotations

import json
from typing import Any


class StrictJSONError(ValueError):
    """A JSON text that parses in more than one way: duplicate keys, or a non-finite number."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJSONError(f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not a JSON number")


def loads_strict(data: bytes | str) -> Any:
    """``json.loads`` that refuses duplicate keys (at any depth) and NaN / Infinity."""
    return json.loads(data, object_pairs_hook=_pairs, parse_constant=_constant)


def check_strict(data: bytes | str) -> None:
    """Raise :class:`StrictJSONError` (or ``ValueError``) unless ``data`` is strict JSON.

    For texts a typed model parses afterwards (pydantic's own parser keeps the last
    duplicate silently): check first, then validate the same bytes.
    """
    loads_strict(data)
