"""Crash-safe file writes: a reader, or a process started after a crash, sees the old
bytes or the new ones, never half a file.

Every file the harness keeps (records, bundles, seals, keys, journal state) is written
through :func:`atomic_write`: a temporary file beside the target, flushed and fsynced,
renamed over it, and the folder fsynced so the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

DEFAULT_MODE = 0o644
"""Mode of files the harness writes: readable by the auditors who share a dossier."""


def atomic_write(path: Path, data: bytes, *, mode: int = DEFAULT_MODE) -> None:
    """Write ``data`` to ``path`` atomically, with ``mode`` (creating the folder if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """fsync a folder, so a rename or a new file in it is durable (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` (mode 0600) with ``data`` only if it does not exist; return whether we did.

    The data is written to a 0600 temporary file and hard-linked into place, so two
    processes racing to create the same file cannot both win, and no one can read it
    half written. Where hard links are unsupported, O_EXCL is the fallback.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:  # mkstemp already creates the file 0600
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            try:
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return False
            with os.fdopen(out, "wb") as fh:
                fh.write(data)
        return True
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
