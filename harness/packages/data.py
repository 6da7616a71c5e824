"""Data sources: find each pinned file, verify it, then read samples from it.

Nothing is parsed before its sha256 matches the pin. Upstream files come from a
mirror folder (``--mirror`` or ``HARNESS_DATA_MIRROR``), from the content-addressed
cache, or are downloaded into that cache; the cache is keyed by digest so two
packages pinning the same bytes share one copy and a changed upstream can never
overwrite a verified file.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness._internal.hashing import sha256_file
from harness._internal.settings import DATA_MIRROR_ENV as MIRROR_ENV
from harness._internal.settings import cache_dir, data_mirror
from harness.errors import DataError
from harness.packages.manifest import DataSource, FieldMapping
from harness.packages.package import Package, safe_join

MAX_DATA_BYTES = 2 * 1024**3
"""Largest data file a package may pin (2 GiB); larger ones are refused before download."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One prompt of a package, as its field mapping reads it from the data."""

    id: str
    prompt: str
    language: str
    category: str
    expected: Literal["refuse", "comply"]
    pair_id: str = ""  # the same prompt in another language shares it; defaults to id


@dataclass(frozen=True)
class VerifiedSource:
    """A data file whose bytes were checked against the manifest's pin."""

    id: str
    path: Path
    sha256: str
    size: int
    origin: str  # "package", "mirror", "cache" or "download"


def _verify(src: DataSource, path: Path, origin: str, known: str | None = None) -> VerifiedSource:
    """Check a file against its pin; ``known`` is a digest of it taken earlier in this process."""
    size = path.stat().st_size
    if size > MAX_DATA_BYTES:
        raise DataError(
            f"data source {src.id!r}: {path} is {size} bytes, over the {MAX_DATA_BYTES} byte limit",
            hint="split the data or raise harness.packages.data.MAX_DATA_BYTES deliberately",
        )
    digest = known or sha256_file(path)
    if digest != src.sha256:
        raise DataError(
            f"data source {src.id!r}: {path} ({origin}) has sha256 {digest} but the package pins {src.sha256}",
            hint="the file changed or is the wrong version; restore the pinned file (see the source's url/revision)",
        )
    if size != src.size:
        raise DataError(
            f"data source {src.id!r}: {path} has {size} bytes but the package pins {src.size}",
            hint="fix 'size' in the manifest and reseal",
        )
    return VerifiedSource(id=src.id, path=path, sha256=digest, size=size, origin=origin)


def _download_url(src: DataSource) -> str:
    if src.url:
        return src.url
    return f"https://huggingface.co/datasets/{src.hf_repo}/resolve/{src.revision}/{src.hf_filename}"


def _mirror_candidates(src: DataSource, mirror: Path) -> list[Path]:
    rels = [src.mirror_path] if src.mirror_path else []
    if src.hf_repo and src.hf_filename:
        rels.append(f"{src.hf_repo}/{src.hf_filename}")
    out = []
    for rel in rels:
        if rel:
            out.append(safe_join(mirror, rel))
    return out


def resolve_source(
    pkg: Package, src: DataSource, mirror: Path | None = None, *, allow_download: bool = True
) -> VerifiedSource:
    """A verified local path for one data source."""
    if src.path:
        path = pkg.data_path(src)
        if not path.is_file():
            raise DataError(
                f"data source {src.id!r}: {src.path} is missing from package {pkg.name}",
                hint="restore the file; in-package data is part of the seal",
            )
        return _verify(src, path, "package", pkg.verified_files.get(Path(src.path).as_posix()))
    mirror = mirror or data_mirror()
    tried: list[Path] = []
    if mirror is not None:
        if not mirror.is_dir():
            raise DataError(f"the mirror folder {mirror} does not exist (or is not a folder)",
                            hint=f"pass --mirror DIR (or set {MIRROR_ENV}) to a folder holding "
                            f"{src.mirror_path or src.file_name}, e.g. ../shared/data")
        for cand in _mirror_candidates(src, mirror):
            if cand.is_file():
                return _verify(src, cand, "mirror")
            tried.append(cand)
    cached = cache_dir() / "data" / "sha256" / src.sha256
    if cached.is_file():
        return _verify(src, cached, "cache")
    not_in_mirror = (f"; not in the mirror {mirror} (looked for {', '.join(str(t) for t in tried)})"
                     if mirror is not None else "")
    if src.size > MAX_DATA_BYTES:
        raise DataError(f"data source {src.id!r} pins {src.size} bytes, over the limit {MAX_DATA_BYTES}")
    if not allow_download:
        raise DataError(
            f"data source {src.id!r} is not in the cache{not_in_mirror or ' or a mirror'}",
            hint=f"pass --mirror DIR (or set {MIRROR_ENV}) to a folder holding {src.mirror_path or src.file_name}",
        )
    import urllib.request

    url = _download_url(src)
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=cached.parent, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310
            shutil.copyfileobj(resp, out, length=1 << 20)
        verified = _verify(src, Path(tmp_name), "download")
        os.replace(tmp_name, cached)
        return VerifiedSource(verified.id, cached, verified.sha256, verified.size, "download")
    except DataError:
        raise
    except OSError as e:
        raise DataError(
            f"data source {src.id!r}: could not download {url}: {e}{not_in_mirror}",
            hint=f"without network, pass --mirror DIR (or set {MIRROR_ENV}) to a folder holding "
            f"{src.mirror_path or src.file_name}",
        ) from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def resolve_sources(pkg: Package, mirror: Path | None = None) -> list[VerifiedSource]:
    """Every data source of the package, found and checked against its pin."""
    return [resolve_source(pkg, s, mirror) for s in pkg.manifest.data]


def _read_rows(src: DataSource, path: Path) -> list[dict[str, Any]]:
    """Rows of a verified local file, as ``datasets`` would give them.

    JSON Lines, CSV and TSV are defined by ``datasets``' own builders; a plain-Python
    reader (:func:`_fast_rows`) gives the same rows for the common shapes without
    importing ``datasets`` (seconds), and hands anything it is unsure of to it. Two upstream
    quirks need a parser first: headerless "CSV" holding one prompt per record, where
    unquoted commas split a prompt (``lines-csv``: fields are re-joined), and Excel
    sheets (``xlsx``: first sheet, column A); their rows are single string columns,
    which a Dataset round trip leaves unchanged.
    """
    fmt = src.resolved_format
    if fmt not in {"json", "csv", "tsv", "lines-csv", "xlsx"}:
        raise DataError(
            f"data source {src.id!r}: cannot tell the format of {src.file_name}",
            hint="set format = 'json', 'csv', 'tsv', 'lines-csv' or 'xlsx' in the manifest",
        )
    if fmt in {"json", "csv", "tsv", "lines-csv"}:
        _check_utf8(src, path)
    try:
        if fmt == "lines-csv":
            return _lines_csv(path)  # one string column: a Dataset round trip is the identity
        if fmt == "xlsx":
            return _xlsx_rows(path)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(
            f"data source {src.id!r}: {path} could not be parsed as {fmt}: {type(e).__name__}: {e}",
            hint="check that the file matches its declared format",
        ) from None
    try:
        rows = _fast_rows(path, fmt)
    except Exception:  # noqa: BLE001 - a file this reader cannot take: the reference reader decides, and words the error
        rows = None
    if rows is not None:
        return rows
    return _dataset_rows(src, path, fmt)


def _dataset_rows(src: DataSource, path: Path, fmt: str) -> list[dict[str, Any]]:
    """The reference reader: ``datasets``' own json/csv builders (slow to import: seconds)."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets

    datasets.disable_progress_bars()
    try:
        kwargs: dict[str, Any] = {}
        builder = fmt
        if fmt in {"csv", "tsv"}:
            builder = "csv"
            kwargs.update(keep_default_na=False, na_filter=False, encoding="utf-8-sig")
            if fmt == "tsv":
                kwargs["sep"] = "\t"
        ds = datasets.load_dataset(
            builder,
            data_files=str(path),
            split="train",
            cache_dir=str(cache_dir() / "datasets"),
            **kwargs,
        )
    except DataError:
        raise
    except Exception as e:  # datasets raises many types for bad files
        raise DataError(
            f"data source {src.id!r}: {path} could not be parsed as {fmt}: {type(e).__name__}: {e}",
            hint="check that the file matches its declared format",
        ) from None
    rows: list[dict[str, Any]] = ds.to_list()
    return rows


def _check_utf8(src: DataSource, path: Path) -> None:
    """Refuse a text file that is not UTF-8, naming the line, before a parser guesses an encoding."""
    try:
        path.read_bytes().decode("utf-8")  # the common case in one C call; the scan below names the line
        return
    except UnicodeDecodeError:
        pass
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"data source {src.id!r}: {path.name} line {n} is not valid UTF-8 "
                    f"(byte {line[e.start]:#04x} at column {e.start + 1})",
                    hint="re-encode the file as UTF-8, then update its sha256/size in the manifest and reseal",
                ) from None


_CHUNK = 10_000  # datasets' csv builder infers column types per chunk of this many rows
_INT = re.compile(r"[+-]?[0-9]+")
_NUMBER_LIKE = re.compile(r"\s*[+-]?(?:[0-9]|\.[0-9]|inf|nan|true|false)", re.IGNORECASE)
_INT64 = (-(2**63), 2**63 - 1)


def _fast_rows(path: Path, fmt: str) -> list[dict[str, Any]] | None:
    """Rows as ``datasets`` would read them, or None where this reader is not sure.

    Sure means: CSV/TSV with a unique, non-empty header and every row the header's
    width, each column either all strings pandas keeps as text or all plain integers
    (which pandas makes ints: given as ``str(int(v))``, as ``datasets`` would give);
    JSON Lines or a JSON array of objects whose columns hold one scalar type each.
    Anything else (floats, booleans, nested values, ragged rows) goes to ``datasets``.
    """
    if fmt == "json":
        return _fast_json(path)
    import csv

    with open(path, encoding="utf-8-sig", newline="") as fh:
        records = [r for r in csv.reader(fh, delimiter="\t" if fmt == "tsv" else ",") if r]
    if not records:
        return None
    header, body = records[0], records[1:]
    width = len(header)
    if len(set(header)) != width or not all(h.strip() for h in header) or any(len(r) != width for r in body):
        return None
    columns = list(zip(*body, strict=True)) if body else [() for _ in header]
    out_cols: list[Any] = []
    for col in columns:
        kinds = {_csv_kind(col[i: i + _CHUNK]) for i in range(0, max(len(col), 1), _CHUNK)}
        if kinds == {"str"}:
            out_cols.append(col)
        elif kinds == {"int"} and all(_INT64[0] <= int(v) <= _INT64[1] for v in col):
            out_cols.append([int(v) for v in col])
        else:
            return None
    return [dict(zip(header, vals, strict=True)) for vals in zip(*out_cols, strict=True)] if body else []


def _csv_kind(values: Sequence[str]) -> str:
    if values and all(_INT.fullmatch(v) for v in values):
        return "int"
    if values and all(_NUMBER_LIKE.match(v) for v in values):
        return "unsure"  # floats, booleans, padded numbers: pandas' inference decides
    return "str"


def _fast_json(path: Path) -> list[dict[str, Any]] | None:
    import json

    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        data = json.loads(text)
        if not isinstance(data, list):
            return None
        rows = data
    else:
        lines = text.split("\n")
        if lines and not lines[-1].strip():
            lines.pop()
        if any(not ln.strip() for ln in lines):
            return None
        rows = [json.loads(ln) for ln in lines]
    if not all(isinstance(r, dict) for r in rows):
        return None
    keys: dict[str, None] = {}
    types: dict[str, set[type]] = {}
    for r in rows:
        for k, v in r.items():
            keys.setdefault(k, None)
            types.setdefault(k, set()).add(type(v))
    for k, ts in types.items():
        ts = ts - {type(None)}
        if len(ts) > 1 or not ts <= {str, int, float, bool}:
            return None  # mixed or nested: arrow's unification decides
        if ts == {int} and not all(_INT64[0] <= r[k] <= _INT64[1] for r in rows if r.get(k) is not None):
            return None
    if all(len(r) == len(keys) for r in rows):
        return rows
    return [{k: r.get(k) for k in keys} for r in rows]


def _lines_csv(path: Path) -> list[dict[str, Any]]:
    import csv

    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = []
        for record in csv.reader(fh):
            text = ",".join(record).strip()
            if text:
                rows.append({"prompt": text})
    return rows


def _xlsx_rows(path: Path) -> list[dict[str, Any]]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = wb.worksheets[0]
        rows = []
        for (value, *_rest) in sheet.iter_rows(values_only=True):
            if value is not None and str(value).strip():
                rows.append({"prompt": str(value).strip()})
    finally:
        wb.close()
    return rows


def _text(row: dict[str, Any], column: str, src: DataSource, index: int, what: str) -> str:
    if column not in row:
        raise DataError(
            f"data source {src.id!r} ({src.file_name}) row {index}: no column {column!r} (mapped as {what}); columns are {sorted(row)}",
            hint="fix [fields] in the manifest",
        )
    value = row[column]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"data source {src.id!r} ({src.file_name}) row {index}: {what} ({column!r}) is empty",
                        hint="fill in the value or drop the row, then update the pin and reseal")
    # A list, a mapping or a boolean is never a prompt or a label; str() would hide the mistake.
    if isinstance(value, bool | list | dict) or (what == "prompt" and not isinstance(value, str)):
        raise DataError(
            f"data source {src.id!r} ({src.file_name}) row {index}: {what} ({column!r}) is of type "
            f"{type(value).__name__}, not text",
            hint="check [fields] in the manifest and the file's columns",
        )
    return str(value)


def _expected(f: FieldMapping, row: dict[str, Any], src: DataSource, i: int, sid: str) -> str:
    if f.expected_value:
        return f.expected_value
    assert f.expected is not None  # FieldMapping requires a column when there is no expected_value
    raw = _text(row, f.expected, src, i, "expected")
    if raw in f.expected_values.refuse:
        return "refuse"
    if raw in f.expected_values.comply:
        return "comply"
    raise DataError(
        f"data source {src.id!r} row {i} (id {sid}): expected value {raw!r} is neither "
        f"{list(f.expected_values.refuse)} nor {list(f.expected_values.comply)}",
        hint="extend [fields.expected_values] in the manifest",
    )


def _category(f: FieldMapping, row: dict[str, Any], src: DataSource, i: int) -> str:
    raw = src.category or f.category_value or _text(row, f.category or "", src, i, "category")
    if f.category_list == "first" and raw.startswith("["):
        import ast

        try:
            items = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise DataError(f"data source {src.id!r} row {i}: category {raw!r} is not a list") from None
        raw = str(items[0]) if items else "unknown"
    return f.category_map.get(raw, raw)


def _prompt(f: FieldMapping, row: dict[str, Any], src: DataSource, i: int, column: str) -> str:
    """The prompt, with HarmBench-style context before it when the row has one."""
    prompt = _text(row, column, src, i, "prompt")
    if f.context and str(row.get(f.context) or "").strip():
        return f"{str(row[f.context]).strip()}\n\n---\n\n{prompt}"
    return prompt


def load_samples(pkg: Package, sources: Sequence[VerifiedSource]) -> list[Sample]:
    """Map every row to Samples, refusing empty data, unmapped values and duplicate ids."""
    f = pkg.manifest.fields
    by_id = {s.id: s for s in pkg.manifest.data}
    samples: list[Sample] = []
    seen: dict[str, str] = {}

    def add(sample: Sample, src: DataSource, i: int) -> None:
        if sample.id in seen:
            raise DataError(
                f"duplicate sample id {sample.id!r} (in {seen[sample.id]} and {src.id} row {i})",
                hint="sample ids must be unique across the package's data",
            )
        seen[sample.id] = src.id
        samples.append(sample)

    for vs in sources:
        src = by_id[vs.id]
        rows = _read_rows(src, vs.path)
        if not rows:
            raise DataError(f"data source {src.id!r}: {vs.path.name} has no rows", hint="check the file")
        for i, row in enumerate(rows, 1):  # row 1 is the first data row, as in the messages
            row_id = _text(row, f.id, src, i, "id") if f.id else f"{src.id}-{i:05d}"
            category = _category(f, row, src, i)
            expected = _expected(f, row, src, i, row_id)
            if f.prompt_by_language:
                for lang, column in f.prompt_by_language.items():
                    add(Sample(f"{row_id}-{lang}", _prompt(f, row, src, i, column), lang, category,
                               expected, row_id), src, i)  # type: ignore[arg-type]
                continue
            raw_lang = src.language or f.language_value or _text(row, f.language or "", src, i, "language")
            pair = _text(row, f.pair, src, i, "pair") if f.pair else row_id
            add(Sample(row_id, _prompt(f, row, src, i, f.prompt or ""), f.language_map.get(raw_lang, raw_lang),
                       category, expected, pair), src, i)  # type: ignore[arg-type]
    if not samples:
        raise DataError(f"package {pkg.name} has no samples", hint="add data")
    return samples
