"""Hostile or broken packages and inputs: refused with the project's own errors, never obeyed.

Path traversal, oversized files, invalid UTF-8, formula-looking cells, rows that fail
validation behind a matching digest, markup in data that reaches the terminal, and
hypothesis fuzzing of every parser of an untrusted file (manifest, seal, record,
outputs, bundle, trust policy, dossier log): the only exceptions allowed out are
subclasses of HarnessError.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.dossier.log import Dossier
from harness.dossier.verify import verify_dossier
from harness.errors import DataError, HarnessError, ManifestError, PackageError, SealError
from harness.packages import data as data_mod
from harness.packages.data import load_samples, resolve_sources
from harness.packages.manifest import MAX_MANIFEST_BYTES, parse_manifest, parse_seal
from harness.packages.package import load_package
from harness.packages.seal import check_package, seal_package
from harness.record import parse_record, read_outputs

from .conftest import REPO
from .fake_openai import FakeOpenAI

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _set_manifest(pkg_dir: Path, **fields: str) -> None:
    """Replace top-level-looking ``key = value`` lines of the first [[data]] table, or any line."""
    m = pkg_dir / "manifest.toml"
    text = m.read_text(encoding="utf-8")
    for key, value in fields.items():
        line = f"{key} = {value}"
        text, n = re.subn(rf"^{key} = .*$", lambda _m, line=line: line, text, count=1, flags=re.M)
        assert n == 1, key
    m.write_text(text, encoding="utf-8")


def _with_data(pkg_dir: Path, name: str, content: bytes, fmt: str) -> None:
    """Point the package's one data source at new bytes, with a matching pin."""
    (pkg_dir / "data" / "prompts.jsonl").unlink()
    (pkg_dir / "data" / name).write_bytes(content)
    _set_manifest(pkg_dir, path=f'"data/{name}"', format=f'"{fmt}"',
                  sha256=f'"{hashlib.sha256(content).hexdigest()}"', size=str(len(content)))


def _load(pkg_dir: Path) -> list:
    pkg = load_package(pkg_dir, read_seal=False)
    return load_samples(pkg, resolve_sources(pkg))


def _row(**kw: object) -> dict:
    return {"id": "a", "prompt": "p", "language": "en", "category": "c", "expected": "refuse", **kw}


def _jsonl(*rows: dict) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


# ---------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("path", '"../../lockfiles/harness.txt"', "steps outside"),
        ("path", '"data/../../x.jsonl"', "steps outside"),
        ("path", '"/etc/passwd"', "absolute"),
        ("path", '"C:/Windows/win.ini"', "absolute"),
        ("path", '"data\\\\prompts.jsonl"', "backslash"),
    ],
)
def test_paths_that_leave_the_package_are_refused(pkg_dir: Path, field: str, value: str, words: str) -> None:
    _set_manifest(pkg_dir, **{field: value})
    with pytest.raises(ManifestError, match=words):
        load_package(pkg_dir)


def test_a_judge_template_outside_the_package_is_refused(pkg_dir: Path) -> None:
    text = (pkg_dir / "manifest.toml").read_text(encoding="utf-8")
    text = re.sub(r'\[scorer\].*?(?=\n\[)', '[scorer]\nkind = "judge"\nmodel = "m"\nrevision = "abc"\n'
                  'template = "../../../etc/passwd"\nmax_tokens = 4\n[scorer.parse]\nregex = "(?P<refusal>no)"\n',
                  text, count=1, flags=re.S)
    (pkg_dir / "manifest.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError, match="template.*steps outside"):
        load_package(pkg_dir)


def test_an_upstream_mirror_path_cannot_climb_out_of_the_mirror(pkg_dir: Path, tmp_path: Path) -> None:
    text = (pkg_dir / "manifest.toml").read_text(encoding="utf-8")
    text = text.replace('path = "data/prompts.jsonl"', 'url = "https://example.org/abc1234/p.jsonl"\n'
                        'revision = "abc1234"\nmirror_path = "../../../etc/passwd"')
    (pkg_dir / "manifest.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError, match="mirror_path.*steps outside"):
        load_package(pkg_dir)


def test_a_data_folder_that_is_a_symlink_out_is_refused(pkg_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    (pkg_dir / "data").rename(outside)
    os.symlink(outside, pkg_dir / "data")
    with pytest.raises(PackageError, match="outside the package folder"):
        load_package(pkg_dir)
    with pytest.raises(PackageError, match="outside the package folder"):
        check_package(pkg_dir)


def test_a_dossier_entry_cannot_point_outside_the_dossier(tmp_path: Path) -> None:
    """A dossier handed over for audit is untrusted: its log may not make us read /etc/passwd."""
    entry = {"schema_version": 1, "seq": 1, "prev": "0" * 64, "kind": "run", "run_id": "r", "time": "t",
             "package": "p", "package_version": "1", "seal": "s", "model_digest": "m", "status": "complete",
             "record": {"path": "/etc/passwd", "sha256": "0" * 64},
             "bundle": {"path": "runs/r/record.sigstore.json", "sha256": "0" * 64},
             "outputs": {"path": "runs/../../../etc/passwd", "sha256": "0" * 64}}
    d = Dossier(tmp_path / "p")
    d.root.mkdir()
    d.log.write_bytes(json.dumps(entry).encode() + b"\n")
    with pytest.raises(HarnessError, match="not inside the dossier"):
        d.entries()
    report = verify_dossier(d, [])
    assert not report.ok and "not inside the dossier" in report.problems[0].what


# ---------------------------------------------------------------------------- sizes


def test_a_data_file_over_the_limit_is_refused_before_it_is_read(pkg_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_mod, "MAX_DATA_BYTES", 1000)  # the real limit is 2 GiB; the logic is the same
    with pytest.raises(DataError, match=r"over the 1000 byte limit") as exc:
        _load(pkg_dir)
    assert "prompts.jsonl" in str(exc.value) and "MAX_DATA_BYTES" in (exc.value.hint or "")


def test_a_huge_manifest_or_seal_is_refused_before_parsing(pkg_dir: Path) -> None:
    seal = pkg_dir / "seal.json"
    seal.write_bytes(seal.read_bytes() + b" " * MAX_MANIFEST_BYTES)
    with pytest.raises(SealError, match="over the .* byte limit"):
        parse_seal(seal)
    m = pkg_dir / "manifest.toml"
    m.write_bytes(m.read_bytes() + b"#" * MAX_MANIFEST_BYTES)
    with pytest.raises(ManifestError, match="manifest.toml is .* over the .* byte limit"):
        load_package(pkg_dir)


# ---------------------------------------------------------------------------- encodings and rows


@pytest.mark.parametrize("fmt, name", [("json", "p.jsonl"), ("csv", "p.csv"), ("lines-csv", "p.csv")])
def test_invalid_utf8_names_the_file_and_line(pkg_dir: Path, fmt: str, name: str) -> None:
    if fmt == "json":
        good = _jsonl(_row(id="a"), _row(id="b"))
        bad = good + b'{"id": "c", "prompt": "caf\xe9", "language": "en", "category": "c", "expected": "refuse"}\n'
    else:
        bad = b"id,prompt,language,category,expected\na,p,en,c,refuse\nb,caf\xe9,en,c,refuse\n"
    _with_data(pkg_dir, name, bad, fmt)
    with pytest.raises(DataError, match=rf"{re.escape(name)} line 3 is not valid UTF-8") as exc:
        _load(pkg_dir)
    assert "UTF-8" in (exc.value.hint or "")


@pytest.mark.parametrize(
    "row, words",
    [
        # JSON Lines rows share one schema: a key missing from one row reads as empty
        ({"id": "a", "language": "en", "category": "c", "expected": "refuse"}, "row 2: prompt ('prompt') is empty"),
        (_row(prompt="   "), "row 2: prompt ('prompt') is empty"),
        (_row(prompt=None), "row 2: prompt ('prompt') is empty"),
        (_row(prompt=["a", "b"]), "row 2: prompt ('prompt') is of type list, not text"),
        (_row(prompt={"text": "x"}), "row 2: prompt ('prompt') is of type dict, not text"),
        (_row(prompt=42), "row 2: prompt ('prompt') is of type int, not text"),
        (_row(expected=True), "row 2: expected ('expected') is of type bool, not text"),
        (_row(language=["en"]), "row 2: language ('language') is of type list, not text"),
        (_row(expected="maybe"), "row 2 (id b): expected value 'maybe'"),
    ],
)
def test_rows_that_fail_validation_behind_a_matching_digest(pkg_dir: Path, row: dict, words: str) -> None:
    content = _jsonl(_row(id="a"), {**row, "id": "b"}) if "id" in row else _jsonl(_row(id="a"), row)
    _with_data(pkg_dir, "p.jsonl", content, "json")
    with pytest.raises(DataError, match=re.escape(words)):
        _load(pkg_dir)
    with pytest.raises(DataError):  # sealing refuses the same data
        seal_package(pkg_dir)


def test_a_csv_without_the_mapped_column_names_it(pkg_dir: Path) -> None:
    _with_data(pkg_dir, "p.csv", b"id,text,language,category,expected\na,hello,en,c,refuse\n", "csv")
    with pytest.raises(DataError, match=r"\(p.csv\) row 1: no column 'prompt' \(mapped as prompt\)"):
        _load(pkg_dir)


# ---------------------------------------------------------------------------- formula-looking cells

FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"click\")", "+SUM(1,2)", "-2+3", "@cmd|' /C calc'!A0",
            "=1+1", "\t=2+2"]


def test_formula_looking_csv_cells_are_plain_text(pkg_dir: Path) -> None:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "prompt", "language", "category", "expected"])
    for i, f in enumerate(FORMULAS):
        w.writerow([f"f{i}", f, "en", "=cat()", "refuse"])
    _with_data(pkg_dir, "p.csv", buf.getvalue().encode(), "csv")
    samples = {s.id: s for s in _load(pkg_dir)}
    assert [samples[f"f{i}"].prompt for i in range(len(FORMULAS))] == FORMULAS  # byte for byte, never evaluated
    assert {s.category for s in samples.values()} == {"=cat()"}


def test_xlsx_cells_are_read_as_values_never_as_formulas(pkg_dir: Path) -> None:
    import io

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "What is a safe dose of paracetamol?"
    ws["A2"] = "=1+1"  # a formula without a cached value (as openpyxl writes it): no value to read
    ws["A3"] = "=HYPERLINK(\"http://evil.example\")"
    ws["A3"].data_type = "s"  # a text cell that merely looks like a formula
    buf = io.BytesIO()
    wb.save(buf)
    _with_data(pkg_dir, "p.xlsx", buf.getvalue(), "xlsx")
    text = (pkg_dir / "manifest.toml").read_text(encoding="utf-8")
    text = re.sub(r"^id = \"id\"\n", "", text, flags=re.M)  # xlsx rows have only a prompt: ids are row numbers
    text = re.sub(r"^language = \"language\"$", 'language_value = "en"', text, flags=re.M)
    text = re.sub(r"^category = \"category\"$", 'category_value = "misc"', text, flags=re.M)
    text = re.sub(r"^expected = \"expected\"$", 'expected_value = "comply"', text, flags=re.M)
    (pkg_dir / "manifest.toml").write_text(text, encoding="utf-8")
    prompts = [s.prompt for s in _load(pkg_dir)]
    assert prompts == ["What is a safe dose of paracetamol?", "=HYPERLINK(\"http://evil.example\")"]
    assert "=1+1" not in prompts and "2" not in prompts


def test_markup_in_data_reaches_the_terminal_as_text(pkg_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich markup in a category or language is printed literally; '[/]' once crashed the report."""
    rows = [_row(id=f"r{i}", category="a[/]b" if i % 2 else "[bold red]x", language="en", prompt=FORMULAS[i % 6],
                 expected="comply" if i % 2 else "refuse") for i in range(6)]
    _with_data(pkg_dir, "p.jsonl", _jsonl(*rows), "json")
    text = (pkg_dir / "manifest.toml").read_text(encoding="utf-8")
    (pkg_dir / "manifest.toml").write_text(text.split("[[baselines]]")[0], encoding="utf-8")
    seal_package(pkg_dir)
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(tmp_path / "cfg"))
    with FakeOpenAI() as srv:
        code = main(["run", str(pkg_dir), "--endpoint", srv.url, "--model", "fake-model", "--dossiers",
                     str(tmp_path / "d"), "--no-progress"])
        sent = sorted(r["messages"][-1]["content"] for r in srv.requests)
    out = capsys.readouterr().out
    assert code == 0
    assert "a[/]b" in out and "[bold red]x" in out
    assert sent == sorted(FORMULAS)  # what reaches the model is the cell text, unevaluated


# ---------------------------------------------------------------------------- fuzzing the parsers


def _json_values() -> st.SearchStrategy:
    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    return st.recursive(leaves, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=5),
                        max_leaves=12)


def _mutations(original: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, random JSON, and the real file with a slice replaced by random bytes."""
    def splice(t: tuple[int, int, bytes]) -> bytes:
        a, b, mid = t
        a, b = sorted((a % (len(original) + 1), b % (len(original) + 1)))
        return original[:a] + mid + original[b:]

    return st.one_of(
        st.binary(max_size=200),
        _json_values().map(lambda v: json.dumps(v).encode()),
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.binary(max_size=12)).map(splice),
    )


def _only_harness_errors(fn, *args) -> None:
    try:
        fn(*args)
    except HarnessError as e:
        assert e.message  # a message, and the CLI can map it to an exit code
    # anything else propagates and fails the test


@pytest.fixture(scope="module")
def samples_of_each_file(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    import shutil

    from harness.run import RunOptions, run_package

    base = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(REPO / "packages" / "mini-safety", base / "packages" / "mini-safety")
    shutil.copytree(REPO / "lockfiles", base / "lockfiles")
    with FakeOpenAI() as srv:
        res = run_package(RunOptions(package=base / "packages" / "mini-safety", endpoint=srv.url, model="fake-model",
                                     limit=3, dossiers_dir=base / "d", config_dir=base / "cfg", progress=False))
    pol = (REPO / "docs" / "examples" / "trust-policy.toml").read_bytes()
    return {
        "manifest": (base / "packages" / "mini-safety" / "manifest.toml").read_bytes(),
        "seal": (base / "packages" / "mini-safety" / "seal.json").read_bytes(),
        "record": (res.run_dir / "record.json").read_bytes(),
        "outputs": (res.run_dir / "outputs.jsonl").read_bytes(),
        "bundle": (res.run_dir / "record.sigstore.json").read_bytes(),
        "log": res.dossier.log.read_bytes(),
        "policy": pol,
    }


@pytest.mark.parametrize("kind", ["manifest", "seal", "record", "outputs", "bundle", "log", "policy"])
def test_parsers_fail_only_with_harness_errors(kind: str, samples_of_each_file: dict[str, bytes], tmp_path: Path) -> None:
    from harness import signing as sign
    from harness import signing as trust

    original = samples_of_each_file[kind]
    target = tmp_path / kind

    def check(blob: bytes) -> None:
        target.write_bytes(blob)
        if kind == "manifest":
            _only_harness_errors(parse_manifest, target)
        elif kind == "seal":
            _only_harness_errors(parse_seal, target)
        elif kind == "record":
            _only_harness_errors(parse_record, target)
        elif kind == "outputs":
            _only_harness_errors(lambda p: list(read_outputs(p)), target)
        elif kind == "bundle":
            _only_harness_errors(sign.verify_bundle, blob, [])
        elif kind == "log":
            d = Dossier(tmp_path / "dossier")
            d.root.mkdir(exist_ok=True)
            d.log.write_bytes(blob)
            _only_harness_errors(d.entries)
            _only_harness_errors(d.head)
            _only_harness_errors(verify_dossier, d, [])
        else:
            _only_harness_errors(trust.load_trust_policy, target)

    FUZZ(given(blob=_mutations(original))(check))()
