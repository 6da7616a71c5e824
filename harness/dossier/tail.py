"""The end of ``log.jsonl``: its last line, and the repair of an append a crash cut off.

Both read backwards from the end only as far as needed, so appending costs the same
however long the log is. A repair never deletes committed data: a last line that is a
whole entry lacking only its newline gets the newline; bytes that are not an entry are
moved to ``log.jsonl.torn-<time>`` beside the log before the log is cut, and the
caller is told (:class:`TailRepair`) so it can say so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._internal.clock import now
from harness._internal.files import create_exclusive
from harness.errors import DossierError

LOG_NAME = "log.jsonl"


def last_line(fh: Any, skip: int = 0) -> bytes | None:
    """The last line of a file without its last ``skip`` bytes, reading backwards only as far as needed."""
    fh.seek(0, os.SEEK_END)
    end = fh.tell() - skip
    if end <= 0:
        return None
    block = 8192
    pos = end
    buf = b""
    while pos > 0:
        step = min(block, pos)
        pos -= step
        fh.seek(pos)
        buf = bytes(fh.read(step)) + buf
        body = buf[:-1] if buf.endswith(b"\n") else buf
        nl = body.rfind(b"\n")
        if nl >= 0:
            return body[nl + 1:]
        block *= 2
    body = buf[:-1] if buf.endswith(b"\n") else buf
    return body or None


@dataclass(frozen=True)
class TailRepair:
    """What a repair of the log's end did: completed an entry, or moved torn bytes aside."""

    completed: bool
    """True: the last line was a whole entry lacking only its newline, which was added."""
    size: int
    """Bytes of the last line."""
    kept_at: Path | None = None
    """Where bytes that were not an entry were moved (never deleted)."""

    def __str__(self) -> str:
        if self.completed:
            return "the last entry lacked its final newline; the newline was added (nothing removed)"
        return (f"the log ended in {self.size} bytes that are not an entry (an append interrupted by a crash); "
                f"they were moved out of the log into {self.kept_at}")


def repair_tail(fh: Any, fd: int, root: Path, is_entry: Callable[[bytes], bool]) -> TailRepair | None:
    """Repair a log that does not end in a newline, never deleting committed data.

    A last line that parses as an entry may have been committed (a tool that copied the
    file dropped the newline): the newline is appended. Anything else is the
    remnant of an append a crash cut off, which was never committed: it is cut from the
    log, but its bytes are first written to ``log.jsonl.torn-<time>`` beside it.
    """
    fh.seek(0, os.SEEK_END)
    end = fh.tell()
    if end == 0:
        return None
    fh.seek(end - 1)
    if fh.read(1) == b"\n":
        return None
    start = 0
    pos = end
    while pos > 0:
        step = min(65536, pos)
        pos -= step
        fh.seek(pos)
        chunk = fh.read(step)
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            start = pos + nl + 1
            break
    fh.seek(start)
    tail = fh.read(end - start)
    if is_entry(tail):  # canonical or not: a parsed entry may have been committed, so it stays
        os.write(fd, b"\n")
        os.fsync(fd)
        return TailRepair(True, len(tail))
    stamp = now().replace(":", "").replace("-", "")
    for n in range(1000):
        kept = root / f"{LOG_NAME}.torn-{stamp}" if n == 0 else root / f"{LOG_NAME}.torn-{stamp}-{n}"
        if create_exclusive(kept, tail):
            break
    else:  # pragma: no cover - a thousand repairs in one second
        raise DossierError(f"cannot keep the torn end of {root / LOG_NAME} aside", hint="clean up old *.torn-* files")
    os.ftruncate(fd, start)
    os.fsync(fd)
    return TailRepair(False, len(tail), kept)
