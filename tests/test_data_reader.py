"""The plain-Python data reader gives exactly the rows `datasets` gives, or steps aside.

`datasets` defines what a json/csv/tsv file means (its builders are the reference);
the fast reader exists only to skip importing it. Every data file the repo's packages
pin is read both ways here, plus the shapes where the fast reader must defer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.packages.data import _dataset_rows, _fast_rows, _read_rows
from harness.packages.package import resolve_package

from .conftest import REPO, SHARED

MIRROR = SHARED / "data"


def _pinned_files() -> list[tuple[str, str, Path]]:
    out = []
    for manifest in sorted((REPO / "packages").glob("*/manifest.toml")):
        pkg = resolve_package(manifest.parent, read_seal=False)
        for src in pkg.manifest.data:
            if src.resolved_format not in {"json", "csv", "tsv"}:
                continue
            path = pkg.data_path(src) if src.path else MIRROR / (src.mirror_path or "")
            out.append((f"{pkg.name}:{src.id}", src.resolved_format, path))
    return out


_PINNED = _pinned_files()


def test_the_repo_pins_in_package_and_mirrored_files() -> None:
    """The parametrised test below must not pass by having nothing to check."""
    paths = [p for _, _, p in _PINNED]
    assert any(MIRROR not in p.parents for p in paths), "no in-package data file found"
    assert any(MIRROR in p.parents for p in paths), "no mirrored data file found"


@pytest.mark.parametrize(("name", "fmt", "path"), _PINNED, ids=lambda v: v if isinstance(v, str) else "")
def test_fast_reader_matches_datasets_on_every_pinned_file(name: str, fmt: str, path: Path) -> None:
    if MIRROR in path.parents and not path.is_file():
        pytest.skip(f"{path} is absent (the data mirror ../shared/data is not here)")
    assert path.is_file(), f"{name}: {path} is pinned by the package but missing from the repository"
    fast = _fast_rows(path, fmt)
    assert fast is not None, f"{name}: the fast reader should take this file"
    src = type("Src", (), {"id": name})()
    assert fast == _dataset_rows(src, path, fmt)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fmt", "text", "fast_takes_it"),
    [
        ("csv", "id,prompt\n1,hello, \"quoted, comma\"\n", False),  # ragged row
        ("csv", "id,prompt\n1,\"multi\nline\"\n02,x\n", True),  # int column: 02 -> 2
        ("csv", "id,score\na,1.5\nb,2\n", False),  # floats: pandas decides
        ("csv", "id,flag\na,True\nb,false\n", False),  # booleans: pandas decides
        ("csv", "id,prompt\na,\nb,x\n", True),  # empty strings stay strings (na_filter off)
        ("tsv", "id\tprompt\na\tone, two\n", True),
        ("json", '{"id": 1, "p": "a"}\n{"id": 2, "p": "b", "extra": "x"}\n', True),  # missing keys -> None
        ("json", '{"id": 1, "p": "a"}\n{"id": 2.5, "p": "b"}\n', False),  # int and float mixed
        ("json", '{"id": 1, "p": {"nested": 1}}\n', False),
        ("json", '[{"id": "a", "p": "x"}, {"id": "b", "p": "y"}]', True),
    ],
)
def test_fast_reader_agrees_or_defers(tmp_path: Path, fmt: str, text: str, fast_takes_it: bool) -> None:
    path = tmp_path / f"data.{fmt}"
    path.write_text(text, encoding="utf-8")
    fast = _fast_rows(path, fmt)
    assert (fast is not None) == fast_takes_it
    src = type("Src", (), {"id": "t"})()
    reference = _dataset_rows(src, path, fmt)  # type: ignore[arg-type]
    if fast is not None:
        assert fast == reference
    rows = _read_rows(type("S", (), {"id": "t", "resolved_format": fmt, "file_name": path.name})(), path)  # type: ignore[arg-type]
    assert rows == reference


def test_bad_json_is_a_data_error_from_the_reference_reader(tmp_path: Path) -> None:
    from harness.errors import DataError

    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": 1}) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match="could not be parsed as json"):
        _read_rows(type("S", (), {"id": "t", "resolved_format": "json", "file_name": path.name})(), path)  # type: ignore[arg-type]
