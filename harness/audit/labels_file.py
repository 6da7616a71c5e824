"""Reading a file of human labels (``harness review import``): CSV or JSONL, bounded and strict.

Reviewers often label in a spreadsheet; the file they send back is received input, so
it is read like any other (docs/threat-model.md): a regular file only, at most
:data:`MAX_BYTES`, UTF-8, and every row exactly the documented columns. Anything else
refuses the whole file with the row that is wrong: a file that is half read would
leave the queue looking reviewed when it is not.

Columns: ``sample_id`` and ``label`` (required), ``note`` and ``reviewer`` (optional).
A CSV exported from the queue may keep its informational columns (:data:`INFO_COLUMNS`),
which are ignored; a row whose label is empty is skipped (an unreviewed row of that
export). JSONL: one object per line with the same keys, string values.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness._internal.files import read_regular
from harness._internal.hashing import sha256_bytes
from harness._internal.strictjson import loads_strict
from harness.dossier.review_details import LabelSource
from harness.errors import LabelError, LabelRefusal

MAX_BYTES: Final = 8 << 20
"""The largest labels file read (8 MiB: far above any real labelling round)."""
MAX_ROWS: Final = 100_000
COLUMNS: Final = ("sample_id", "label", "note", "reviewer")
INFO_COLUMNS: Final = ("language", "category", "expected", "verdict", "uncertain_reason", "prompt", "response",
                       "answer", "current_label")
"""Columns of an exported queue that may stay in the file; their values are not read."""
_MAX_FIELD = 64 << 10


@dataclass(frozen=True)
class LabelInput:
    """One label as given, before it is checked against the run and the package."""

    sample: str
    label: str
    note: str = ""
    reviewer: str | None = None
    where: str = ""
    """Where it came from (``line 3``), for error messages."""


def _bad(path: Path, what: str) -> LabelError:
    return LabelError(f"{path.name}: {what}; nothing was imported", LabelRefusal.MALFORMED,
                      hint="columns: sample_id,label[,note,reviewer] (docs/review.md)")


def _row(path: Path, where: str, row: dict[str, Any], default_reviewer: str | None) -> LabelInput | None:
    for k, v in row.items():
        if not isinstance(v, str):
            raise _bad(path, f"{where}: {k} is not a string")
        if "\x00" in v:
            raise _bad(path, f"{where}: {k} holds a NUL character")
    sample, label = row.get("sample_id", "").strip(), row.get("label", "").strip()
    if not label:
        return None
    if not sample:
        raise _bad(path, f"{where}: no sample_id")
    reviewer = (row.get("reviewer") or "").strip() or default_reviewer
    return LabelInput(sample=sample, label=label, note=(row.get("note") or "").strip(), reviewer=reviewer,
                      where=where)


def _csv(path: Path, text: str, default_reviewer: str | None) -> list[LabelInput]:
    old = csv.field_size_limit()
    csv.field_size_limit(_MAX_FIELD)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = reader.fieldnames or []
        unknown = [c for c in header if c not in COLUMNS and c not in INFO_COLUMNS]
        if len(set(header)) != len(header):
            raise _bad(path, "a column appears twice in the header")
        if unknown or "sample_id" not in header or "label" not in header:
            raise _bad(path, f"the header must name sample_id and label (and only documented columns); it has "
                             f"{header[:10]}")
        out = []
        for n, row in enumerate(reader, 2):
            if n > MAX_ROWS + 1:
                raise _bad(path, f"more than {MAX_ROWS} rows")
            if None in row or any(v is None for v in row.values()):
                raise _bad(path, f"line {n}: not as many fields as the header has columns")
            got = _row(path, f"line {n}", {k: v for k, v in row.items() if k in COLUMNS}, default_reviewer)
            if got is not None:
                out.append(got)
        return out
    except csv.Error as e:
        raise _bad(path, f"not valid CSV ({e})") from None
    finally:
        csv.field_size_limit(old)


def _jsonl(path: Path, text: str, default_reviewer: str | None) -> list[LabelInput]:
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if n > MAX_ROWS:
            raise _bad(path, f"more than {MAX_ROWS} lines")
        try:
            obj = loads_strict(line)
        except ValueError as e:
            raise _bad(path, f"line {n} is not strict JSON ({e})") from None
        if not isinstance(obj, dict):
            raise _bad(path, f"line {n} is not a JSON object")
        unknown = sorted(set(obj) - set(COLUMNS))
        if unknown:
            raise _bad(path, f"line {n}: unknown keys {unknown[:5]}")
        if "sample_id" not in obj or "label" not in obj:
            raise _bad(path, f"line {n}: sample_id and label are required")
        got = _row(path, f"line {n}", obj, default_reviewer)
        if got is None:
            raise _bad(path, f"line {n}: the label is empty")
        out.append(got)
    return out


def read_labels_file(path: Path, *, default_reviewer: str | None = None) -> tuple[list[LabelInput], LabelSource]:
    """The labels of a ``.csv`` or ``.jsonl`` file and where they came from; LabelError for anything else."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise LabelError(f"{path.name}: a labels file is .csv or .jsonl", LabelRefusal.MALFORMED,
                         hint="columns: sample_id,label[,note,reviewer] (docs/review.md)")
    try:
        raw = read_regular(path, limit=MAX_BYTES)
    except FileNotFoundError:
        raise LabelError(f"{path} does not exist", LabelRefusal.MALFORMED) from None
    except OSError as e:
        too_big = "limit" in str(e)
        raise LabelError(f"{path.name}: {e.strerror or e}", LabelRefusal.TOO_LARGE if too_big else LabelRefusal.MALFORMED,
                         hint=f"a labels file is a regular file of at most {MAX_BYTES >> 20} MiB; split it") from None
    try:
        text = raw.decode("utf-8-sig" if suffix == ".csv" else "utf-8")
    except UnicodeDecodeError as e:
        raise _bad(path, f"not UTF-8 (byte {e.start})") from None
    kind = "csv" if suffix == ".csv" else "jsonl"
    labels = _csv(path, text, default_reviewer) if kind == "csv" else _jsonl(path, text, default_reviewer)
    if not labels:
        raise LabelError(f"{path.name} holds no labels", LabelRefusal.EMPTY,
                         hint="fill the label column of the rows you reviewed")
    return labels, LabelSource(kind=kind, name=path.name, sha256=sha256_bytes(raw))
