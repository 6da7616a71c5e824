"""What this verifier has seen: the newest verified checkpoint of each dossier.

A signed checkpoint proves who vouched for a log, not that the log kept growing: the
keeper of a key can sign a shorter log, or show one auditor a different history than
another (a split view). A verifier that remembers the newest tree head it accepted, as
Go's checksum-database client and TUF clients do, can demand an RFC 9162 consistency
proof from it on every later check: the log it sees now must extend the one it saw.

Each remembered checkpoint is the verified checkpoint file itself (a C2SP note, text),
stored under :func:`harness._internal.settings.checkpoints_dir` as
``<sha256 of the origin>.checkpoint``; it is only ever replaced by a larger one that was
verified consistent with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from harness._internal import merkle
from harness._internal.files import atomic_write, read_regular
from harness._internal.settings import checkpoints_dir
from harness.dossier.checkpoint import (
    MAX_NOTE_BYTES,
    ORIGIN_PREFIX,
    Checkpoint,
    TreeHead,
    parse_checkpoint,
)
from harness.errors import HarnessError

SUFFIX = ".checkpoint"


@dataclass(frozen=True)
class Inconsistency:
    """Why the log now seen is not an extension of a checkpoint seen before: both tree heads."""

    before: TreeHead
    now: TreeHead
    why: str

    def __str__(self) -> str:
        return f"{self.why}: before {self.before.describe()}; now {self.now.describe()}"


def check_consistent(before: TreeHead, leaves: list[bytes], now: TreeHead) -> Inconsistency | None:
    """Whether the log of ``leaves`` (whose head is ``now``) extends ``before``, by an RFC 9162
    consistency proof built from the leaves and checked against both roots."""
    if before.size > now.size:
        return Inconsistency(before, now, f"the log is shorter than before ({now.size} entries, "
                                          f"{before.size} before): entries were removed from the end")
    if before.size == 0:
        return None
    proof = merkle.consistency_proof(before.size, leaves)
    if not merkle.verify_consistency(before.size, now.size, before.root, now.root, proof):
        return Inconsistency(before, now, f"the log forked: its first {before.size} entries are not the ones "
                                          "seen before (an entry was changed, removed, inserted or reordered)")
    return None


class CheckpointMemory:
    """The remembered checkpoints of one verifier (a folder; default: the user's)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else checkpoints_dir()

    def _path(self, origin: str) -> Path:
        return self.folder / (hashlib.sha256(origin.encode("utf-8")).hexdigest() + SUFFIX)

    def get(self, origin: str) -> Checkpoint | None:
        """The newest checkpoint verified for ``origin``; an unreadable memory counts as none,
        which is reported by :meth:`others` only as a first sighting, never as a failure."""
        path = self._path(origin)
        try:
            cp = parse_checkpoint(read_regular(path, limit=MAX_NOTE_BYTES))
        except (OSError, HarnessError):
            return None
        return cp if cp.head.origin == origin else None

    def remember(self, cp: Checkpoint) -> bool:
        """Keep ``cp`` (already verified, and consistent with what was kept) if it is newer."""
        old = self.get(cp.head.origin)
        if old is not None and old.head.size >= cp.head.size:
            return False
        try:
            atomic_write(self._path(cp.head.origin), cp.to_bytes())
        except OSError:
            return False  # a read-only home must not make verification fail
        return True

    def others(self, origin: str) -> list[TreeHead]:
        """Heads remembered for other dossiers of the same package (another first entry).

        Seeing a package's dossier with a first entry unlike any seen before is either
        someone else's dossier of that package, or one whose history was rewritten from
        its first entry on; the verifier cannot tell which, so it says so."""
        prefix = origin.rsplit("/", 1)[0] + "/"
        if not origin.startswith(ORIGIN_PREFIX) or not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            try:
                cp = parse_checkpoint(read_regular(path, limit=MAX_NOTE_BYTES))
            except (OSError, HarnessError):
                continue
            if cp.head.origin.startswith(prefix) and cp.head.origin != origin:
                out.append(cp.head)
        return out
