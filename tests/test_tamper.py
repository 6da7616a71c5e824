"""Tampering, as a property: any byte changed, deleted or inserted is caught, and named.

For every file the harness seals or signs (package files, seal, lockfile, run record,
bundle, outputs file, dossier log), hypothesis picks one edit; the edit is applied in
place and undone afterwards, and the matching check must fail with a message that
names the file. Example counts are modest so the suite stays fast.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.backends.openai import OpenAIBackend
from harness.cli import main
from harness.dossier.log import Dossier
from harness.dossier.runs import verify_record
from harness.dossier.verify import verify_dossier
from harness.errors import HarnessError
from harness.packages.package import resolve_package
from harness.packages.seal import check_package
from harness.run import RunOptions, run_package
from harness.signing.keys import default_trust_store

from .conftest import REPO
from .fake_openai import FakeOpenAI

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@st.composite
def edits(draw: st.DrawFn) -> tuple[str, float, int]:
    """(kind, relative position in [0, 1), byte): applied to whatever file is drawn."""
    return (draw(st.sampled_from(["change", "delete", "insert"])), draw(st.floats(0, 1, exclude_max=True)),
            draw(st.integers(0, 255)))


def apply_edit(path: Path, edit: tuple[str, float, int]) -> bytes:
    """Edit ``path`` in place; returns the original bytes for restoring."""
    kind, rel, byte = edit
    data = path.read_bytes()
    pos = int(rel * (len(data) + (kind == "insert")))
    if kind == "change":
        new = byte if byte != data[pos] else (byte + 1) % 256
        out = data[:pos] + bytes([new]) + data[pos + 1:]
    elif kind == "delete":
        out = data[:pos] + data[pos + 1:]
    else:
        out = data[:pos] + bytes([byte]) + data[pos:]
    path.write_bytes(out)
    return data


class _Edited:
    def __init__(self, path: Path, edit: tuple[str, float, int]) -> None:
        self.path, self.edit = path, edit

    def __enter__(self) -> None:
        self.original = apply_edit(self.path, self.edit)

    def __exit__(self, *exc: object) -> None:
        self.path.write_bytes(self.original)


# ---------------------------------------------------------------------------- packages


PACKAGE_FILES = ["manifest.toml", "seal.json", "data/prompts.jsonl", "../../lockfiles/harness.txt"]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("tamper-pkg")
    shutil.copytree(REPO / "packages" / "mini-safety", base / "packages" / "mini-safety")
    shutil.copytree(REPO / "lockfiles", base / "lockfiles")
    pkg = base / "packages" / "mini-safety"
    check_package(pkg)
    return pkg


def _package_check_fails(pkg: Path) -> str:
    """What `harness package check` reports: loading and checking, as the CLI does."""
    try:
        check_package(resolve_package(pkg))
    except HarnessError as e:
        return str(e)
    raise AssertionError("the edit was not detected")


@pytest.mark.parametrize("rel", PACKAGE_FILES)
@SETTINGS
@given(edit=edits())
def test_any_edit_to_a_package_file_is_detected_and_named(package: Path, rel: str, edit: tuple[str, float, int]) -> None:
    target = package / rel
    with _Edited(target, edit):
        message = _package_check_fails(package)
    assert target.name in message, message
    check_package(package)  # restored: passes again


def test_package_check_cli_names_the_file(package: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for rel in PACKAGE_FILES:
        with _Edited(package / rel, ("insert", 0.5, ord("x"))):
            assert main(["package", "check", str(package)]) in (1, 2)
        assert Path(rel).name in capsys.readouterr().err, rel
    assert main(["package", "check", str(package)]) == 0


# ---------------------------------------------------------------------------- runs and the dossier


@pytest.fixture(scope="module")
def dossier(tmp_path_factory: pytest.TempPathFactory, package: Path) -> Iterator[tuple[Dossier, list]]:
    """Two signed runs (10 samples each, through the loopback fake) in one dossier."""
    base = tmp_path_factory.mktemp("tamper-runs")
    with FakeOpenAI() as srv:
        for _ in range(2):
            res = run_package(RunOptions(package=package, endpoint=srv.url, model="fake-model", limit=10,
                                         dossiers_dir=base / "d", config_dir=base / "cfg", progress=False))
    assert isinstance(res.dossier, Dossier) and OpenAIBackend is not None
    yield res.dossier, default_trust_store(base / "cfg")


RUN_FILES = ["record.json", "record.sigstore.json", "outputs.jsonl"]


@pytest.mark.parametrize("name", RUN_FILES)
@pytest.mark.parametrize("which", [1, 2])
@SETTINGS
@given(edit=edits())
def test_any_edit_to_a_run_file_is_detected_by_dossier_verify(
    dossier: tuple[Dossier, list], name: str, which: int, edit: tuple[str, float, int]
) -> None:
    d, trusted = dossier
    run_dir = d.run_dir(d.resolve(str(which)).run_id)
    with _Edited(run_dir / name, edit):
        report = verify_dossier(d, trusted)
    assert not report.ok
    assert any(name in p.path or name in p.what for p in report.problems), report.problems
    assert verify_dossier(d, trusted).ok


@pytest.mark.parametrize("name", RUN_FILES)
@SETTINGS
@given(edit=edits())
def test_any_edit_to_a_run_file_is_detected_by_verify(
    dossier: tuple[Dossier, list], name: str, edit: tuple[str, float, int]
) -> None:
    d, trusted = dossier
    run_dir = d.run_dir(d.resolve("latest").run_id)
    original = (run_dir / name).read_bytes()
    with _Edited(run_dir / name, edit):
        try:
            verify_record(run_dir, trusted)
        except HarnessError as e:
            assert name in str(e), str(e)
            return
        edited = (run_dir / name).read_bytes()
    # Only a bundle edit can pass `harness verify` alone, and only one that leaves every signed
    # byte as it was (JSON spacing; base64 must be standard): the dossier pins those bytes.
    assert name == "record.sigstore.json", "an edit to a signed file was not detected"
    assert _signed_content(edited) == _signed_content(original)


def _signed_content(bundle: bytes) -> tuple[bytes, bytes]:
    import base64
    import json

    env = json.loads(bundle)["dsseEnvelope"]
    return base64.b64decode(env["payload"]), base64.b64decode(env["signatures"][0]["sig"])


def test_edits_that_keep_the_parsed_content_are_still_caught(package: Path, dossier: tuple[Dossier, list]) -> None:
    """Re-serialising a file (same values, other bytes) is an edit too."""
    import json

    seal = package / "seal.json"
    original = seal.read_bytes()
    seal.write_text(json.dumps(json.loads(original), indent=2))
    try:
        assert "seal.json" in _package_check_fails(package)
    finally:
        seal.write_bytes(original)
    d, trusted = dossier
    run_dir = d.run_dir(d.resolve("latest").run_id)
    bundle = run_dir / "record.sigstore.json"
    for path, new in (
        (d.log, lambda raw: raw.rstrip(b"\n").rsplit(b"\n", 1)[0] + b"\n"
            + json.dumps(json.loads(raw.rstrip(b"\n").rsplit(b"\n", 1)[1])).encode() + b"\n"),
        (bundle, lambda raw: json.dumps(json.loads(raw), indent=1).encode()),
        (bundle, lambda raw: raw.replace(b'"sig":"', b'"sig":" ')),
    ):
        raw = path.read_bytes()
        path.write_bytes(new(raw))
        try:
            report = verify_dossier(d, trusted)
        finally:
            path.write_bytes(raw)
        assert not report.ok and any(path.name in p.path or path.name in p.what for p in report.problems), report.problems
    assert verify_dossier(d, trusted).ok


@SETTINGS
@given(edit=edits())
def test_any_edit_to_the_dossier_log_is_detected(dossier: tuple[Dossier, list], edit: tuple[str, float, int]) -> None:
    d, trusted = dossier
    with _Edited(d.log, edit):
        report = verify_dossier(d, trusted)
    assert not report.ok
    assert any("log.jsonl" in p.path or "log.jsonl" in p.what for p in report.problems), report.problems


def test_verify_and_dossier_cli_name_the_file(dossier: tuple[Dossier, list], capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    d, _ = dossier
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(d.root.parent.parent / "cfg"))
    run_dir = d.run_dir(d.resolve("latest").run_id)
    assert main(["verify", str(run_dir)]) == 0
    assert main(["dossier", "verify", "mini-safety", "--dossiers", str(d.root.parent)]) == 0
    capsys.readouterr()
    for name in RUN_FILES:
        with _Edited(run_dir / name, ("change", 0.5, ord("~"))):
            assert main(["verify", str(run_dir)]) == 1
            assert name in capsys.readouterr().err
            assert main(["dossier", "verify", "mini-safety", "--dossiers", str(d.root.parent)]) == 1
            assert name in capsys.readouterr().out
    with _Edited(d.log, ("delete", 0.99, 0)):
        assert main(["dossier", "verify", "mini-safety", "--dossiers", str(d.root.parent)]) == 1
        assert "log.jsonl" in capsys.readouterr().out


def test_lenient_base64_in_a_bundle_is_refused_by_verify_alone(dossier: tuple[Dossier, list]) -> None:
    """A decoder that skips stray characters would read the signed bytes; verify does not."""
    d, trusted = dossier
    run_dir = d.run_dir(d.resolve("latest").run_id)
    bundle = run_dir / "record.sigstore.json"
    raw = bundle.read_bytes()
    for edit in (raw.replace(b'"sig":"', b'"sig":" '), raw.replace(b'"payload":"', b'"payload":"\\n')):
        assert edit != raw
        bundle.write_bytes(edit)
        try:
            with pytest.raises(HarnessError, match="record.sigstore.json.*not standard base64"):
                verify_record(run_dir, trusted)
        finally:
            bundle.write_bytes(raw)
    verify_record(run_dir, trusted)
