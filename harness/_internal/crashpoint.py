"""Named crash points, so tests can kill a run at an exact step with SIGKILL.

A process killed by a timer lands wherever the scheduler happens to be, which is
almost always inside generation; the steps that matter most for durability (the
record, the signature, the dossier append) take milliseconds and would almost never
be hit. Naming them lets the reliability tests kill the process at each one.

Set ``HARNESS_CRASH_AT=<point>`` or ``<point>#<n>`` (the n-th time the point is
reached in this process), optionally ``:INT`` to send SIGINT (a Ctrl-C) instead of
SIGKILL. Unset, ``crashpoint`` costs one global lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

from harness._internal.settings import CRASH_AT_ENV, crash_target

ENV = CRASH_AT_ENV

POINTS = (
    "journal-line",  # after a sample's line reached the journal
    "before-sign",
    "signed",  # bundle made, nothing written yet
    "record-written",  # record.json written into the work folder
    "bundle-written",  # record.sigstore.json written into the work folder
    "commit-marked",  # the commit marker exists, the work folder is not yet moved
    "moved",  # the work folder is now runs/<run_id>, no dossier entry yet
    "entry-appended",  # the dossier entry is written, its checkpoint not yet signed
    "appended",  # the dossier entry is written, the commit marker not yet removed
)

_hits: Counter[str] = Counter()
_target: tuple[str, int, int] | None = None
_read = False


def _read_target() -> tuple[str, int, int] | None:
    raw = crash_target()
    if not raw:
        return None
    raw, _, sig = raw.partition(":")
    name, _, nth = raw.partition("#")
    return name, int(nth or 1), signal.SIGINT if sig == "INT" else signal.SIGKILL


def crashpoint(name: str) -> None:
    """Kill (or interrupt) this process if ``HARNESS_CRASH_AT`` names this point (and hit count)."""
    global _target, _read
    if not _read:
        _target, _read = _read_target(), True
    if _target is None:
        return
    _hits[name] += 1
    if _target[:2] == (name, _hits[name]):
        os.kill(os.getpid(), _target[2])
