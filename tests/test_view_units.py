"""The viewer's parts without a browser or a model: SVG plots, escaping, page splitting, the site folder.

A received dossier is hostile: every string from it (a prompt, a response, a package or
group name, a note) must come out of the site as text, never as markup. These tests put
such strings through each renderer and parse the result.
"""

from __future__ import annotations

import base64
import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.audit.show import SampleView
from harness.errors import HarnessError
from harness.report import svg
from harness.report.site import ViewOptions, build_site
from harness.report.site.html import CSP, SCRIPT, SCRIPT_HASH, filter_form, page
from harness.report.site.model import slug
from harness.report.site.samples import BYTES_PER_PAGE, ROWS_PER_PAGE, browser, chunks, sample_row

HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">"\'&'
NS = {"s": "http://www.w3.org/2000/svg"}


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # well-formed XML, or this raises


def test_forest_is_well_formed_accessible_svg_with_every_value_as_text() -> None:
    pts = [svg.Point("en", 0.9, 0.555, 0.997, "n=10"), svg.Point("hi", 0.5, 0.2, 0.8, other=0.7),
           svg.Point("ta", None)]
    root = _parse(svg.forest(pts, ident="f1", title="refusal per language", reference=0.88))
    assert root.get("role") == "img"
    labelled = root.get("aria-labelledby", "").split()
    ids = {el.get("id"): el for el in root.iter() if el.get("id")}
    assert labelled == ["f1-t", "f1-d"] and all(i in ids for i in labelled)
    assert ids["f1-t"].text == "refusal per language"
    titles = [t.text or "" for t in root.iterfind(".//s:g/s:title", NS)]
    assert "en: 90.0% [55.5, 99.7], n=10" in titles
    assert any(t.startswith("hi: 50.0%") and "other 70.0%" in t for t in titles)
    assert "claimed: 88.0%" in titles  # the reference line names itself
    texts = "".join(root.itertext())
    assert "n/a" in texts and "claimed 88.0%" in texts  # a missing value and the claim are written out
    assert len(root.findall(".//s:circle[@class='estimate']", NS)) == 2  # no dot where there is no value
    assert root.findall(".//s:path[@class='other']", NS)  # the other value: a hollow diamond, not a colour


def test_a_hostile_label_stays_text_in_every_plot() -> None:
    pts = [svg.Point(HOSTILE, 0.5, 0.4, 0.6, HOSTILE)]
    for markup in (svg.forest(pts, ident="x", title=HOSTILE, reference=0.5, reference_label=HOSTILE),
                   svg.trend([(HOSTILE, pts)], ident="y", title=HOSTILE)):
        assert "<script" not in markup and "<img" not in markup
        root = _parse(markup)
        assert root.find("s:title", NS).text == HOSTILE  # type: ignore[union-attr]
        assert not root.findall(".//s:script", NS)


def test_trend_draws_one_labelled_panel_per_group_and_thins_its_run_labels() -> None:
    runs = [svg.Point(f"#{i}", (i % 10) / 10, max(0.0, (i % 10) / 10 - 0.1), min(1.0, (i % 10) / 10 + 0.1))
            for i in range(1, 61)]
    runs[5] = svg.Point("#6", None)
    root = _parse(svg.trend([("overall", runs), ("hi", runs[:30])], ident="t", title="across runs"))
    panels = root.findall("s:g[@class='panel']", NS)
    assert [p.find("s:text", NS).text for p in panels] == ["overall", "hi"]  # type: ignore[union-attr]
    assert len(panels[0].findall("s:g[@class='point']", NS)) == 59  # the run without a value has no mark
    labels = [t.text for t in root.findall("s:text", NS)]
    assert 4 <= len(labels) <= 17 and "#60" in labels  # never 60 overlapping labels; the last run is named


def test_values_outside_the_unit_interval_are_drawn_inside_the_plot() -> None:
    root = _parse(svg.forest([svg.Point("x", 1.7, -0.5, 2.0)], ident="c", title="c"))
    cx = float(root.find(".//s:circle", NS).get("cx"))  # type: ignore[union-attr, arg-type]
    assert 150 <= cx <= svg.WIDTH - 170


def test_the_one_script_is_allowed_by_its_hash_and_nothing_inline_else() -> None:
    assert SCRIPT_HASH == "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    script_src = next(p for p in CSP.split(";") if p.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src and SCRIPT_HASH in script_src
    assert "default-src 'none'" in CSP
    html_page = page(HOSTILE, f"<p>{HOSTILE.replace('<', '&lt;')}</p>", crumbs=[(HOSTILE, "x.html"), (HOSTILE, None)],
                     script=True)
    assert html_page.count("<script>") == 1 and "<script>alert" not in html_page
    assert f"<script>{SCRIPT}</script>" in html_page


def test_a_hostile_sample_renders_inert() -> None:
    s = SampleView(id=HOSTILE, language='hi" onmouseover="x', category=HOSTILE, expected="refuse",
                   verdict=HOSTILE, response=HOSTILE, prompt=HOSTILE)
    row = sample_row(s)
    assert "<script" not in row and "<img" not in row
    assert 'data-language="hi&quot; onmouseover=&quot;x"' in row
    assert row.count(">&lt;script&gt;alert(1)&lt;/script&gt;") == 5  # as text: id, category, verdict, prompt, response
    form = filter_form("t", [("language", HOSTILE, [HOSTILE])], HOSTILE)
    assert "<script" not in form and "<img" not in form


def test_a_missing_prompt_or_answer_is_said_so() -> None:
    s = SampleView(id="a", language="en", category="c", expected="refuse", verdict="error", response=None,
                   prompt=None, error="timeout")
    row = sample_row(s)
    assert "<em>not available</em>" in row and "none (timeout)" in row


def _sample(i: int, text: str = "x") -> SampleView:
    return SampleView(id=f"s{i:06d}", language="en", category="c", expected="refuse", verdict="refusal",
                      response=text, prompt=text)


def test_large_runs_are_split_into_pages_under_the_size_budget() -> None:
    rows = [f"<tr>{'x' * 5000}</tr>" for _ in range(700)]
    pages = chunks(rows)
    assert len(pages) == 3 and all(sum(len(r) for r in p) <= BYTES_PER_PAGE for p in pages)
    assert sum(len(p) for p in pages) == 700
    many = chunks(["<tr></tr>"] * (ROWS_PER_PAGE * 2 + 1))
    assert [len(p) for p in many] == [ROWS_PER_PAGE, ROWS_PER_PAGE, 1]
    assert chunks([]) == [[]]


def test_a_huge_response_is_cut_and_its_length_said() -> None:
    b = browser([_sample(1, "y" * 3_000_000)], "from the package", lambda k: f"run-1-{k}.html")
    assert len(b.pages) == 1 and len(b.pages[0]) < 100_000
    assert "3,000,000 characters in all" in b.pages[0]


def test_the_browser_links_its_pages_to_each_other() -> None:
    b = browser([_sample(i) for i in range(ROWS_PER_PAGE + 5)], "here", lambda k: f"run-7-{k}.html")
    assert b.counts == [ROWS_PER_PAGE, 5]
    assert 'href="run-7-1.html#samples"' in b.pages[0] and 'href="run-7-0.html#samples"' in b.pages[1]
    assert "samples 1001 to 1005 of 1005" in b.pages[1]


def test_slugs_are_safe_file_names() -> None:
    assert slug("mini-safety") == "mini-safety"
    for bad in ("../etc", "a/b", "..", ".", HOSTILE, ""):
        s = slug(bad)
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", s) and s not in (".", "..")


def test_a_folder_not_made_by_view_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(HarnessError) as err:
        build_site(ViewOptions(out=out, dossiers_dir=tmp_path / "dossiers", trusted=[]))
    assert err.value.exit_code == 2 and (out / "notes.txt").read_text() == "keep me"
    site = tmp_path / "site"
    first = build_site(ViewOptions(out=site, dossiers_dir=tmp_path / "dossiers", trusted=[], claims=tmp_path))
    assert first.packages == [] and (site / "index.html").is_file()
    (site / "stale.html").write_text("from an older build")
    build_site(ViewOptions(out=site, dossiers_dir=tmp_path / "dossiers", trusted=[], claims=tmp_path))
    assert not (site / "stale.html").exists()  # an earlier site is rebuilt, not added to


def test_only_claim_reports_that_forbid_scripts_are_copied(tmp_path: Path) -> None:
    claims = tmp_path / "claim-reports"
    (claims / "evil").mkdir(parents=True)
    (claims / "evil" / "claim-report.html").write_text("<html><script>alert(1)</script></html>")
    site = tmp_path / "site"
    res = build_site(ViewOptions(out=site, dossiers_dir=tmp_path / "dossiers", trusted=[], claims=claims))
    assert res.claims == 1 and not (site / "claims").exists()
    index = (site / "index.html").read_text()
    assert "not copied" in index and "<script>alert" not in index
