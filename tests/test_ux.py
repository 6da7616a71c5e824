"""What a new user meets: output that fits any terminal, exit codes that mean one thing,
JSON errors, failing before the expensive part, and `harness show`."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.report import layout
from harness.report import terminal as render
from harness.run import RunOptions, RunResult, run_package

from .conftest import REPO, SHARED, environment

pytestmark = pytest.mark.slow
MIRROR = SHARED / "data"
WIDTHS = (60, 80, 132)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two runs of the default package (the second with another seed), a baseline-free
    MultiJail subset when the data mirror is there, all in one scratch dossier."""
    base = tmp_path_factory.mktemp("ux")
    for name in ("mini-safety", "multijail", "xstest"):
        shutil.copytree(REPO / "packages" / name, base / "packages" / name)
    shutil.copytree(REPO / "lockfiles", base / "lockfiles")
    with environment(HARNESS_CONFIG_DIR=str(base / "config"), HARNESS_DOSSIERS=str(base / "dossiers"),
                     HARNESS_CHECKPOINTS_DIR=str(base / "checkpoints")):
        out: dict[str, Any] = {"base": base}
        pkg = base / "packages" / "mini-safety"
        out["a"] = run_package(RunOptions(package=pkg, progress=False))
        out["b"] = run_package(RunOptions(package=pkg, seed=7, progress=False))
        if MIRROR.is_dir():
            out["multijail"] = run_package(RunOptions(package=base / "packages" / "multijail", mirror=MIRROR, limit=30,
                                                      max_tokens=8, progress=False))
            out["xstest"] = run_package(RunOptions(package=base / "packages" / "xstest", mirror=MIRROR, limit=30,
                                                   max_tokens=8, progress=False))
        yield out


@pytest.fixture(autouse=True)
def _module_env(runs: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test reads the module's dossier and trusts its key (conftest gives each test its own)."""
    base = runs["base"]
    monkeypatch.setenv("HARNESS_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("HARNESS_DOSSIERS", str(base / "dossiers"))
    monkeypatch.setenv("HARNESS_CHECKPOINTS_DIR", str(base / "checkpoints"))


def _render(width: int, fn: Any, *args: Any) -> str:
    from rich.console import Console

    con = Console(width=width, file=io.StringIO(), highlight=False, color_system=None, force_terminal=False)
    with layout.using(con):
        fn(*args)
    return con.file.getvalue()  # type: ignore[attr-defined, no-any-return]


def _fits(text: str, width: int) -> None:
    from rich.cells import cell_len

    over = [line for line in text.splitlines() if cell_len(line) > width]
    assert not over, f"{len(over)} lines over {width} columns, e.g. {over[0]!r}"
    assert "…" not in text, "a cell was cut"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_run_table_fits_without_cutting_a_label(runs: dict[str, Any], width: int) -> None:
    result: RunResult = runs["a"]
    text = _render(width, render.print_run, result)
    _fits(text, width)
    for m in result.record.metrics:  # every group label and every interval, whole
        assert re.search(rf"\b{re.escape(m.group.split(':', 1)[-1])}\b", text), m.group
        assert f"{100 * m.ci_low:.1f}" in text and f"{100 * m.ci_high:.1f}" in text
    for b in result.record.baselines:
        assert b.word in text
    assert "Clopper-Pearson" in text and "compliance" not in text.split("\n\n")[1]  # legend: only this run's metrics


@pytest.mark.parametrize("width", WIDTHS)
def test_diff_log_and_gate_fit(runs: dict[str, Any], width: int) -> None:
    from harness.audit.gate import gate_run
    from harness.diff import diff_refs
    from harness.dossier.log import Dossier

    d = Dossier.for_package("mini-safety")
    log = _render(width, render.print_log, d, d.timeline())
    _fits(log, width)
    for e in d.entries():
        assert e.ident in log  # ids are never split
    diff = _render(width, render.print_diff, diff_refs("mini-safety@1", "mini-safety@2"))
    _fits(diff, width)
    assert "seed" in diff
    gate = _render(width, render.print_gate, gate_run("mini-safety@latest"))
    _fits(gate, width)
    assert "INCONCLUSIVE" in gate and "gate passed" in gate


@pytest.mark.parametrize("width", WIDTHS)
def test_upstream_tables_fit(runs: dict[str, Any], width: int) -> None:
    if "multijail" not in runs:
        pytest.skip(f"the data mirror {MIRROR} is not here (it lives beside the repo, in ../shared/data)")
    mj = _render(width, render.print_run, runs["multijail"])
    _fits(mj, width)
    for c in runs["multijail"].record.comparisons:
        assert c.language in mj and f"{100 * c.reference_value:.1f}" in mj  # the "en %" column is whole
    xs = _render(width, render.print_run, runs["xstest"])
    _fits(xs, width)
    assert re.search(r"\ben\b", xs)  # XSTest's one language is shown


def test_piped_output_follows_columns(runs: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "70")
    monkeypatch.setattr(layout._LazyConsole, "_real", None)
    assert main(["dossier", "log", "mini-safety"]) == 0
    _fits(capsys.readouterr().out, 70)
    monkeypatch.setattr(layout._LazyConsole, "_real", None)


BAD_REFS = [
    ["verify", "mini-safety@99"], ["reproduce", "mini-safety@99"], ["diff", "mini-safety@1", "mini-safety@99"],
    ["dossier", "approve", "mini-safety@99", "--note", "x"], ["gate", "mini-safety@99"], ["show", "mini-safety@99"],
    ["rescore", "mini-safety@99", "--scorer", "refusal-patterns@2.0.0"],
    ["baseline", "update", "mini-safety", "--from", "mini-safety@99"],
    ["dossier", "verify", "nosuch"], ["dossier", "log", "mini-safty"], ["dossier", "checkpoint", "mini-safty"],
    ["verify", "mini-safty@1"], ["show", "mini-safety@1", "--sample", "no-such-id"],
]


@pytest.mark.parametrize("argv", BAD_REFS, ids=lambda a: " ".join(a))
def test_bad_references_exit_2_with_a_json_error(runs: dict[str, Any], argv: list[str], monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(runs["base"])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    if "mini-safty" in " ".join(argv):
        assert "did you mean mini-safety?" in err
    assert main([*argv, "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 2 and doc["error"] and "hint" in doc


def test_after_a_baseline_entry_the_suggested_diff_is_between_runs(runs: dict[str, Any]) -> None:
    text = _render(132, render.print_run, runs["b"])
    m = re.search(r"see: harness diff mini-safety@(\d+) mini-safety@(\d+)", text)
    assert m is not None and main(["diff", f"mini-safety@{m.group(1)}", f"mini-safety@{m.group(2)}"]) in (0, 1)


def test_sigstore_without_a_token_fails_before_the_model_loads(pkg_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    import harness.run

    monkeypatch.delenv("SIGSTORE_ID_TOKEN", raising=False)
    monkeypatch.setattr("sigstore.oidc.detect_credential", lambda: None)
    loaded: list[str] = []
    monkeypatch.setattr(harness.run, "open_backend", lambda *a, **k: loaded.append("backend"))
    dossiers = pkg_dir.parent.parent / "fresh-dossiers"
    assert main(["run", str(pkg_dir), "--sign", "sigstore", "--no-progress", "--dossiers", str(dossiers)]) == 2
    assert "needs an OIDC identity token" in capsys.readouterr().err
    assert not loaded
    assert not (dossiers / "mini-safety").exists()  # no journal, no work folder


def test_an_expired_token_is_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from harness.errors import SigningError
    from harness.signing.signers import SigstoreSigner, preflight

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    token = ".".join((part({"alg": "RS256"}), part({"iss": "https://oauth2.sigstore.dev/auth", "aud": "sigstore",
                                                     "sub": "x", "email": "a@b.c", "iat": 1, "nbf": 1, "exp": 2}), "sig"))
    with pytest.raises(SigningError, match="not usable for Sigstore"):
        preflight(SigstoreSigner(identity_token=token))


def test_show_prints_prompts_checked_against_the_run(runs: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "mini-safety@1", "--language", "hi", "--verdict", "refusal", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["shown"] > 0 and doc["total"] == 120 and "seal checked" in doc["prompts"]
    assert all(s["language"] == "hi" and s["verdict"] == "refusal" and s["prompt"] for s in doc["samples"])
    assert main(["show", "mini-safety@2", "--flipped-against", "mini-safety@1", "--json", "--no-pager"]) == 0
    flips = json.loads(capsys.readouterr().out)["samples"]
    assert all(s["other_verdict"] != s["verdict"] for s in flips)
    assert main(["show", "mini-safety@1", "--sample", "hi-refuse-01", "--no-pager"]) == 0
    out = capsys.readouterr().out
    assert "hi-refuse-01" in out and "prompt:" in out and "response:" in out


def test_results_convert_to_rows(runs: dict[str, Any]) -> None:
    import harness

    rows = harness.to_rows(runs["a"])
    assert {"metric", "group", "value", "ci_low", "ci_high", "n", "successes", "ci_method"} <= set(rows[0])
    diff_rows = harness.to_rows(harness.diff_refs("mini-safety@1", "mini-safety@2"))
    assert diff_rows and {"delta", "paired", "p_adjusted"} <= set(diff_rows[0])
    shown = harness.to_rows(harness.show_run("mini-safety@1", harness.Filters(language="en")))
    assert len(shown) == 20 and all(r["prompt"] for r in shown)
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(harness.HarnessError, match="needs pandas"):
            harness.to_dataframe(runs["a"])
    else:
        assert len(harness.to_dataframe(runs["a"])) == len(rows)


def test_an_unreachable_endpoint_fails_before_anything_is_written(pkg_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dossiers = pkg_dir.parent.parent / "fresh-dossiers"
    code = main(["run", str(pkg_dir), "--endpoint", f"http://127.0.0.1:{port}/v1", "--model", "m", "--no-progress",
                 "--dossiers", str(dossiers), "--json"])
    out = capsys.readouterr()
    assert code == 2 and "cannot reach" in out.err and json.loads(out.out)["exit_code"] == 2
    assert not (dossiers / "mini-safety").exists()
