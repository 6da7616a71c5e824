"""Digests and canonical JSON, the two primitives every sealed thing rests on.

Files are streamed in 1 MiB blocks so a gigabyte of data never sits in memory, and
JSON is canonicalised with RFC 8785 so a digest does not depend on key order or
float formatting.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import rfc8785

_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(_BLOCK)
        view = memoryview(buf)
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) bytes: the only serialisation that is ever hashed or signed."""
    return rfc8785.dumps(obj)


def canonical_digest(obj: Any) -> str:
    return sha256_bytes(canonical_json(obj))


def atomic_write(path: Path, data: bytes) -> None:
    """Write a file so a crash leaves either the old bytes or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
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
