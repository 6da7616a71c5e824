"""Digests and canonical JSON, the two primitives every sealed and signed thing rests on.

Files are streamed in 1 MiB blocks so a gigabyte of data never sits in memory, and
JSON is canonicalised with RFC 8785 so a digest does not depend on key order or
float formatting.
"""

from __future__ import annotations

import hashlib
import json as _json
import os
from pathlib import Path
from typing import Any

import rfc8785

_BLOCK = 1 << 20


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file's bytes, streamed.

    Small files (records, bundles, outputs of small runs) are read with one ``os.read``
    on a raw descriptor: a dossier verify hashes tens of thousands of them, and a Python
    file object costs more than the hashing.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size < _BLOCK:
            data = os.read(fd, size + 1)
            while len(data) > size and (chunk := os.read(fd, _BLOCK)):  # it grew since fstat
                data += chunk
            return hashlib.sha256(data).hexdigest()
        h = hashlib.sha256()
        with open(fd, "rb", buffering=0, closefd=False) as fh:
            buf = bytearray(_BLOCK)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                h.update(view[:n])
        return h.hexdigest()
    finally:
        os.close(fd)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes in memory."""
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) bytes: the only serialisation that is ever hashed or signed.

    ``rfc8785`` is the reference; it is pure Python and costs ~0.2 ms per output line,
    which dominates digesting 100,000 lines. For the values runs actually hold (strings,
    safe integers, booleans, null and floats printed the same way by both languages),
    the standard library's C encoder with sorted keys gives the same bytes; anything
    else (non-BMP or private-use keys, where UTF-16 order differs from code point
    order; lone surrogates; floats ECMAScript prints differently) goes to the reference.
    """
    try:
        if _has_float(obj):
            obj_ = _plain(obj)
        else:
            obj_ = obj
        return _json.dumps(obj_, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                           allow_nan=False).encode("utf-8")
    except (_NotPlain, UnicodeEncodeError, ValueError):
        return rfc8785.dumps(obj)


def _has_float(obj: Any) -> bool:
    """Whether obj holds a float (then :func:`_plain` rewrites it); raises _NotPlain like it.

    The common case, a list of flat dicts of strings and small ints, costs one type
    check per value here, without building a copy.
    """
    t = type(obj)
    if t is dict:
        found = False
        for k, v in obj.items():
            if type(k) is not str or (not k.isascii() and max(k) >= "\ue000"):
                raise _NotPlain
            tv = type(v)
            if tv is str or v is None or tv is bool:
                continue
            if tv is int:
                if not -_SAFE_INT < v < _SAFE_INT:
                    raise _NotPlain
                continue
            found = _has_float(v) or found
        return found
    if t is list or t is tuple:
        found = False
        for v in obj:
            tv = type(v)
            if tv is str or v is None or tv is bool:
                continue
            found = _has_float(v) or found
        return found
    if t is float:
        return True
    if t is str or t is bool or obj is None:
        return False
    if t is int:
        if -_SAFE_INT < obj < _SAFE_INT:
            return False
        raise _NotPlain
    raise _NotPlain


class _NotPlain(Exception):
    pass


_SAFE_INT = 2**53


def _plain(obj: Any) -> Any:
    """obj with integral floats as ints; raises _NotPlain where JCS and json.dumps may differ."""
    t = type(obj)
    if t is str or t is bool or obj is None:
        return obj
    if t is int:
        if -_SAFE_INT < obj < _SAFE_INT:
            return obj
        raise _NotPlain
    if t is dict:
        out = {}
        for k, v in obj.items():
            if type(k) is not str or (not k.isascii() and max(k) >= "\ue000"):
                raise _NotPlain
            out[k] = _plain(v)
        return out
    if t is list or t is tuple:
        return [_plain(v) for v in obj]
    if t is float:
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise _NotPlain
        if obj.is_integer():
            if abs(obj) < _SAFE_INT:
                return int(obj)
            raise _NotPlain  # ECMAScript prints 2**53. as "9007199254740992", repr as "...992.0"
        if 1e-4 <= abs(obj) < 1e16:
            return obj  # repr and ECMAScript agree: shortest round-trip digits, fixed notation
        raise _NotPlain
    raise _NotPlain


def canonical_digest(obj: Any) -> str:
    """Hex sha256 of the RFC 8785 form of ``obj``: a digest of content, not of formatting."""
    return sha256_bytes(canonical_json(obj))
