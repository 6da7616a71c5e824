"""``harness view`` end to end, in a real browser: Playwright driving Debian's headless Chromium.

One small dossier made by the product itself (a suite of mini-safety x the embedded model,
a second run at another temperature so verdicts flip, a review with a hostile note, a claim
check), one site built by the CLI; then each page type is loaded and read as a person would:
verdicts, per-language rows, plots and their text alternatives, a filter (JavaScript), the
same page with JavaScript off, the keyboard. A tampered copy of the dossier checks that a
failure is shown and that hostile text stays text. Screenshots go to pytest's tmp folder.

Chromium comes from ``tools/get_chromium.sh`` (Debian's ``chromium-headless-shell``, no
``playwright install`` and no CDN); the tests skip, saying why, only when it cannot be had.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.report.site import ViewOptions, build_site, start_server
from harness.signing.policy import resolve_trust

from .conftest import REPO, environment

pytestmark = pytest.mark.slow
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
SUITE = """schema_version = 1
name = "view-test"
[[packages]]
name = "mini-safety"
limit = 24
[[models]]
name = "tiny-chat"
[gate]
baselines = "all"
[[gate.criteria]]
metric = "refusal_rate"
min = 0.5
scope = "every-language"
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    """Headless Chromium from Debian's packages (tools/get_chromium.sh fetches it once into a cache)."""
    try:
        proc = subprocess.run(["bash", str(REPO / "tools" / "get_chromium.sh")], capture_output=True, text=True,
                              timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"Chromium could not be obtained: {e}")
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.skip("Chromium could not be obtained from Debian's packages: "
                    + " | ".join(proc.stderr.strip().splitlines()[-3:]))
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (a dev dependency) is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("view")
    shutil.copytree(REPO / "packages" / "mini-safety", base / "packages" / "mini-safety")
    shutil.copytree(REPO / "lockfiles", base / "lockfiles")
    (base / "suite.toml").write_text(SUITE)
    env = {"HARNESS_CONFIG_DIR": str(base / "config"), "HARNESS_DOSSIERS": str(base / "dossiers"),
           "HARNESS_CHECKPOINTS_DIR": str(base / "checkpoints"), "HARNESS_PACKAGES": str(base / "packages")}
    pkg = str(base / "packages" / "mini-safety")
    with environment(**env):
        assert main(["suite", "run", str(base / "suite.toml")]) == 0  # run #1 and a signed suite record
        assert main(["run", pkg, "--limit", "24", "--temperature", "1.5", "--no-progress", "--no-gate"]) == 0  # #2
        assert main(["dossier", "approve", "mini-safety@1", "--note", HOSTILE]) == 0  # entry #3, an event
        main(["claim", "check", str(REPO / "docs" / "examples" / "claim.toml"), "--packages", str(base / "packages"),
              "--report-dir", str(base / "claim-reports" / "example")])
        assert main(["view", "--out", str(base / "site"), "--claims", str(base / "claim-reports"),
                     "--diff", "mini-safety@2", "mini-safety@1", "--json"]) == 0
        trusted = resolve_trust()
    flips = [x for x in _outputs(base, 1) if _outputs(base, 2)[x] != _outputs(base, 1)[x]]
    return {"base": base, "site": base / "site", "env": env, "trusted": trusted, "flips": flips}


def _outputs(base: Path, seq: int) -> dict[str, str]:
    log = (base / "dossiers" / "mini-safety" / "log.jsonl").read_text().splitlines()
    entry = json.loads(log[seq - 1])
    lines = (base / "dossiers" / "mini-safety" / entry["outputs"]["path"]).read_text().splitlines()
    return {x["id"]: x["verdict"] for x in map(json.loads, lines)}


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def _open(browser: Any, path: Path, *, js: bool = True) -> Any:
    ctx = browser.new_context(java_script_enabled=js, viewport={"width": 1200, "height": 900})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(path.as_uri())
    page.errors = errors
    return page


def _shot(page: Any, shots: Path, name: str) -> None:
    out = shots / f"{name}.png"
    page.screenshot(path=str(out), full_page=True)
    assert out.stat().st_size > 10_000


def _plots_are_accessible(page: Any) -> int:
    plots = page.locator("svg.plot")
    n = plots.count()
    for i in range(n):
        svg = plots.nth(i)
        assert svg.get_attribute("role") == "img"
        for ident in (svg.get_attribute("aria-labelledby") or "").split():
            assert page.locator(f"[id='{ident}']").text_content()  # the title and the description exist
    return n


def test_the_index_lists_packages_suites_and_claims(made: dict[str, Any], browser: Any, shots: Path) -> None:
    page = _open(browser, made["site"] / "index.html")
    row = page.locator("#packages-table tbody tr")
    assert row.count() == 1 and "VERIFIED" in row.inner_text() and "mini-safety" in row.inner_text()
    suites = page.locator("#suites-table tbody tr")
    assert suites.count() == 1 and "PASS" in suites.inner_text() and "VERIFIED" in suites.inner_text()
    claims = page.locator("#claims-list li")
    assert claims.count() == 1 and "consistent" in claims.inner_text()
    assert "verified when this site was built" in page.inner_text("main").lower()
    _shot(page, shots, "index")
    page.click("#claims-list a")  # the copied procurement report, with its plot of the claim per language
    figure = page.locator("#claim-figure svg.plot")
    assert figure.count() == 1 and _plots_are_accessible(page) == 1
    assert page.locator("#claim-figure g.reference title").text_content() == "claimed: 88.0%"
    assert page.locator("#claim-figure g.row").count() == 6  # one row per language
    _shot(page, shots, "claim-report")
    assert not page.errors


def test_the_package_page_shows_the_timeline_states_and_plots(made: dict[str, Any], browser: Any,
                                                              shots: Path) -> None:
    page = _open(browser, made["site"] / "p" / "mini-safety" / "index.html")
    assert page.locator("#verification").inner_text().startswith("VERIFIED")
    rows = page.locator("#timeline tbody tr")
    assert rows.count() == 3
    kinds = [rows.nth(i).locator("td").nth(2).inner_text() for i in range(3)]
    assert kinds == ["run", "run", "review"]
    for i in range(3):
        assert "VERIFIED" in rows.nth(i).locator("td").nth(5).inner_text()
    review = rows.nth(2).inner_text()
    assert HOSTILE in review and "about #1" in review  # the hostile note is text, and says what it is about
    assert page.evaluate("window.__pwned") is None
    assert "reviewed" in rows.nth(0).inner_text() or "review" in rows.nth(0).inner_text()  # a later entry names it
    assert _plots_are_accessible(page) >= 6  # three metrics, per language and per category
    panel_labels = page.locator("#plot-mini-safety-refusal_rate-language g.panel > text:first-child").all_text_contents()
    assert panel_labels == ["overall", "bn", "en", "es", "fr", "hi", "ta"]
    titles = page.locator("#plot-mini-safety-refusal_rate-language g.point title").all_text_contents()
    assert any(t.startswith("hi, #2: ") and "[" in t for t in titles)
    _shot(page, shots, "package")
    assert not page.errors


def test_the_run_page_filters_samples_with_javascript(made: dict[str, Any], browser: Any, shots: Path) -> None:
    page = _open(browser, made["site"] / "p" / "mini-safety" / "run-1.html")
    assert page.locator("#verification").inner_text().startswith("VERIFIED")
    gate = page.locator("#baselines tbody tr")
    assert gate.count() >= 1 and all(v in ("PASS", "FAIL", "INCONCLUSIVE", "NOT EVALUATED")
                                     for v in gate.locator("td:nth-child(7)").all_inner_texts())
    groups = page.locator("#metrics-refusal_rate tbody td:first-child").all_inner_texts()
    assert [g for g in groups if g.startswith("language:")] == [f"language:{x}" for x in
                                                               ("bn", "en", "es", "fr", "hi", "ta")]
    assert page.locator("svg#forest-1-refusal_rate-language g.row").count() == 7  # overall + six languages
    rows = page.locator("#sample-table tbody tr")
    total = rows.count()
    assert total == 24 and page.locator("form.filters").is_visible()
    page.select_option("form.filters select[name=language]", "hi")
    visible = page.locator("#sample-table tbody tr:visible")
    assert 0 < visible.count() < total
    assert set(visible.locator("td:nth-child(2)").all_inner_texts()) == {"hi"}
    assert page.locator("form.filters output").inner_text() == f"{visible.count()} of {total} shown"
    page.select_option("form.filters select[name=language]", "")
    page.fill("form.filters input[type=search]", "ta-")
    assert set(page.locator("#sample-table tbody tr:visible td:nth-child(2)").all_inner_texts()) == {"ta"}
    page.fill("form.filters input[type=search]", "")
    page.select_option("form.filters select[name=verdict]", "refusal")
    verdicts = page.locator("#sample-table tbody tr:visible td:nth-child(5)").all_inner_texts()
    assert verdicts and set(verdicts) == {"refusal"}
    prompts = page.locator("#sample-table tbody td:nth-child(6)").all_inner_texts()
    assert all(p and p != "not available" for p in prompts)  # the package was found by seal: prompts shown
    _shot(page, shots, "run-filtered")
    assert not page.errors


def test_pages_work_without_javascript_and_by_keyboard(made: dict[str, Any], browser: Any, shots: Path) -> None:
    page = _open(browser, made["site"] / "p" / "mini-safety" / "run-2.html", js=False)
    assert page.locator("#sample-table tbody tr:visible").count() == 24  # every sample, nothing filtered away
    assert not page.locator("form.filters").is_visible()  # no control that would not work
    assert "Filtering and search need JavaScript" in page.inner_text("body")
    assert page.locator("svg.plot").count() >= 6 and page.locator("#baselines").count() == 1
    _shot(page, shots, "run-no-js")
    page = _open(browser, made["site"] / "p" / "mini-safety" / "run-1.html")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for sel in page.locator("form.filters select, form.filters input").all():
        assert sel.evaluate("e => e.closest('label') !== null")  # every control has its label


def test_the_diff_page_lists_the_flipped_samples(made: dict[str, Any], browser: Any, shots: Path) -> None:
    assert made["flips"], "the second run should flip some verdicts (temperature 1.5)"
    page = _open(browser, made["site"] / "p" / "mini-safety" / "diff-1-2.html")
    assert page.locator("#diff-summary").inner_text().startswith("CHANGED")
    assert "generation" in page.locator("#changes").inner_text()
    flipped = page.locator("#flip-table tbody tr")
    assert sorted(flipped.locator("td:first-child").all_inner_texts()) == sorted(made["flips"])
    assert page.locator("#deltas tbody tr").count() > 0
    _shot(page, shots, "diff")
    chosen = _open(browser, made["site"] / "p" / "mini-safety" / "diff-2-1.html")  # --diff mini-safety@2 mini-safety@1
    assert chosen.locator("#flip-table tbody tr").count() == len(made["flips"])


def test_the_suite_page_shows_the_matrix_and_gate(made: dict[str, Any], browser: Any, shots: Path) -> None:
    index = _open(browser, made["site"] / "index.html")
    index.click("#suites-table a")
    assert index.locator("#suite-gate").inner_text().startswith("GATE PASS")
    assert index.locator("#verification").inner_text().startswith("VERIFIED")
    cell = index.locator("#suite-matrix tbody td").first
    assert "PASS" in cell.inner_text() and "refusal_rate" in cell.inner_text()
    assert index.locator("#criteria-table tbody tr").count() == 6  # every language
    assert _plots_are_accessible(index) == 1
    _shot(index, shots, "suite")
    cell.locator("a").click()  # the pair's run page
    assert index.url.endswith("/p/mini-safety/run-1.html")


def test_a_tampered_dossier_is_shown_failed_and_its_text_stays_text(made: dict[str, Any], browser: Any,
                                                                   shots: Path) -> None:
    base = made["base"]
    copy = base / "tampered" / "dossiers"
    shutil.copytree(base / "dossiers", copy)
    log = (copy / "mini-safety" / "log.jsonl").read_text().splitlines()
    outputs = copy / "mini-safety" / json.loads(log[1])["outputs"]["path"]
    lines = [json.loads(x) for x in outputs.read_text().splitlines()]
    lines[0]["response"] = HOSTILE
    outputs.write_text("".join(json.dumps(x, sort_keys=True, separators=(",", ":")) + "\n" for x in lines))
    res = build_site(ViewOptions(out=base / "tampered" / "site", dossiers_dir=copy, trusted=made["trusted"],
                                 claims=base / "nothing"))
    assert not res.ok
    page = _open(browser, base / "tampered" / "site" / "p" / "mini-safety" / "index.html")
    assert page.locator("#verification").inner_text().startswith("FAILED")
    states = page.locator("#timeline tbody tr td:nth-child(6)").all_inner_texts()
    assert states[0].startswith("VERIFIED") and states[1].startswith("FAILED") and "outputs" in states[1]
    _shot(page, shots, "tampered-package")
    run = _open(browser, base / "tampered" / "site" / "p" / "mini-safety" / "run-2.html")
    assert run.locator("#verification").inner_text().startswith("FAILED")
    assert HOSTILE in run.locator("#sample-table").inner_text()
    assert run.evaluate("window.__pwned") is None and run.locator("#sample-table img").count() == 0
    _shot(run, shots, "tampered-run")


def test_the_site_is_served_on_loopback_and_stopped(made: dict[str, Any], browser: Any) -> None:
    server, url = start_server(made["site"])
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "p/mini-safety/index.html", timeout=10) as r:  # noqa: S310 - loopback
            assert r.status == 200 and b"Dossier: mini-safety" in r.read()
        page = browser.new_page()
        page.goto(url)
        assert page.locator("#packages-table").count() == 1
        page.close()
    finally:
        server.shutdown()
        server.server_close()


def test_harness_view_serve_prints_its_address_and_stops(made: dict[str, Any], tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "harness", "view", "--out", str(tmp_path / "site"), "--serve", "--claims",
           str(tmp_path)]
    proc = subprocess.Popen(cmd, env={**os.environ, **made["env"]}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=made["base"])
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving" in line and "http://127.0.0.1:" in line, line
        url = line.split(" at ", 1)[1].split()[0]
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - loopback
            assert b"Safety benchmark results" in r.read()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_pages_rendered_by_worker_processes_are_the_same(made: dict[str, Any], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Large dossiers are rendered by forked workers (a slice of runs each): same pages, byte for byte."""
    import harness.report.site.build as build
    import harness.report.site.model as model

    for mod in (build, model):
        monkeypatch.setattr(mod, "now_seconds", lambda: "2027-01-01T00:00:00Z")
    opts = {"dossiers_dir": made["base"] / "dossiers", "trusted": made["trusted"], "claims": tmp_path / "none"}
    serial = build_site(ViewOptions(out=tmp_path / "serial", **opts))
    monkeypatch.setattr(build, "_workers", lambda runs: 2)
    forked = build_site(ViewOptions(out=tmp_path / "forked", **opts))
    files = sorted(p.relative_to(tmp_path / "serial") for p in (tmp_path / "serial").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "forked") for p in (tmp_path / "forked").rglob("*") if p.is_file())
    assert all((tmp_path / "serial" / f).read_bytes() == (tmp_path / "forked" / f).read_bytes() for f in files)
    assert (serial.pages, serial.largest_page) == (forked.pages, forked.largest_page)


def test_a_long_timeline_is_split_and_its_links_follow(made: dict[str, Any], browser: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.report.site.pages as site_pages

    monkeypatch.setattr(site_pages, "TIMELINE_ROWS", 2)
    build_site(ViewOptions(out=tmp_path / "site", dossiers_dir=made["base"] / "dossiers", trusted=made["trusted"],
                           claims=tmp_path / "none"))
    page = _open(browser, tmp_path / "site" / "p" / "mini-safety" / "index.html")
    assert page.locator("#timeline tbody tr td:first-child").all_inner_texts() == ["3"]  # the latest entries
    page.click("#e3 td:nth-child(5) a")  # "about #1": on the older page
    assert page.url.endswith("/timeline-1.html#e1")
    assert page.locator("#timeline tbody tr td:first-child").all_inner_texts() == ["1", "2"]
    assert page.locator("nav.pages a").first.get_attribute("href") == "index.html#timeline-h"
