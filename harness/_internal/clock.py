"""Time stamps and ids, written one way everywhere (records, events, journals).

UTC with milliseconds and a ``Z``: sortable as text, and the same on every machine.
Ids are a UTC second plus 8 random hex digits, so they sort by time and two runs
started in the same second still differ.
"""

from __future__ import annotations

import datetime as dt
import uuid


def now() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_seconds() -> str:
    """The current UTC time to the second, ``YYYY-MM-DDTHH:MM:SSZ`` (for reports)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_id() -> str:
    """A run or event id: ``YYYYMMDDTHHMMSSZ-xxxxxxxx``."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
