"""Crash-safe file writes: a reader, or a process started after a crash, sees the old
bytes or the new ones, never half a file.

Every file the harness keeps (records, bundles, seals, keys, journal state) is written
through :func:`atomic_write`: a temporary file beside the target, flushed and fsynced,
renamed over it, and the folder fsynced so the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
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


# --------------------------------------------------------------------------- received files
#
# A dossier, a claim folder or a package archive may come from a party who wants the
# harness to read, move or delete something else. Three rules cover it: a name read
# from a file is a plain name (:func:`check_name`), a path read from a file stays under
# its root once symlinks are resolved (:func:`confine`), and only regular files are
# opened, so a FIFO, a device or a socket placed where a file should be is refused at
# once instead of blocking the reader forever (:func:`open_regular`).

MAX_NAME_LENGTH = 128
"""Longest id or file name accepted from a received file (run ids are 25 characters)."""


class UnsafeNameError(ValueError):
    """An id or name read from a file that could address something other than one entry of a folder."""


class OutsideRootError(ValueError):
    """A path read from a file that leads outside the folder it must stay in (after resolving symlinks)."""


class NotRegularFileError(OSError):
    """Something other than a regular file (FIFO, device, socket, folder, link) where a file was expected."""

    def __init__(self, path: Path | str, kind: str) -> None:
        super().__init__(f"{path} is a {kind}, not a regular file")
        self.path = Path(path)
        self.kind = kind


def check_name(value: object, what: str = "id") -> str:
    """``value`` if it is safe as one path component: a non-empty string of at most
    :data:`MAX_NAME_LENGTH` printable characters, without separators, NUL, or ``.``/``..``."""
    if not isinstance(value, str):
        raise UnsafeNameError(f"{what} {value!r} is not a string")
    if not value or len(value) > MAX_NAME_LENGTH:
        raise UnsafeNameError(f"{what} {value[:40]!r} is empty or longer than {MAX_NAME_LENGTH} characters")
    if value in (".", "..") or any(c in value for c in "/\\\x00") or not value.isprintable():
        raise UnsafeNameError(f"{what} {value!r} is not a plain name (separators, '..', NUL or control characters)")
    return value


def confine(root: Path, rel: str | Path) -> Path:
    """``root / rel`` with every symlink resolved, refused unless it is still inside ``root``
    (itself resolved). Lexical checks alone miss a symlink inside the folder that points out."""
    base = Path(root).resolve()
    target = (base / rel).resolve()
    if target != base and not target.is_relative_to(base):
        raise OutsideRootError(f"{rel} leads outside {root} (to {target})")
    return target


def file_kind(mode: int) -> str:
    """A word for a file type, for messages."""
    for test, word in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "folder"), (stat.S_ISLNK, "symbolic link")):
        if test(mode):
            return word
    return "regular file" if stat.S_ISREG(mode) else "special file"


def open_regular(path: Path | str, *, follow: bool = True) -> int:
    """A read-only descriptor of ``path``, refused at once unless it is a regular file.

    ``O_NONBLOCK`` makes opening a FIFO return immediately instead of waiting for a
    writer (and a device not block on open); ``fstat`` on the open descriptor then
    decides, so the file checked is the file read. ``follow=False`` adds
    ``O_NOFOLLOW``: a symlink as the last component is refused too.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if not follow and e.errno == errno.ELOOP:
            raise NotRegularFileError(path, "symbolic link") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFileError(path, file_kind(mode))
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd


def read_regular(path: Path | str, *, follow: bool = True, limit: int | None = None) -> bytes:
    """The bytes of a regular file (see :func:`open_regular`); with ``limit``, refuse a larger one."""
    fd = open_regular(path, follow=follow)
    try:
        size = os.fstat(fd).st_size
        if limit is not None and size > limit:
            raise OSError(errno.EFBIG, f"{path} is {size} bytes, over the limit of {limit}")
        chunks = []
        total = 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if limit is not None and total > limit:
                raise OSError(errno.EFBIG, f"{path} grew over the limit of {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def sha256_regular(path: Path | str, *, follow: bool = True) -> str:
    """Hex sha256 of a regular file, streamed; anything else is refused at once."""
    fd = open_regular(path, follow=follow)
    try:
        h = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        return h.hexdigest()
    finally:
        os.close(fd)
