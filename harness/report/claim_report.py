"""The procurement report of a claim check, in Markdown and in self-contained HTML.

A reviewer reads these without the harness: so each report states the claim, every
verification step with its outcome, the statistics with the rule they were judged by,
per-language and per-category figures (in HTML also a plot of the claimed value against our
interval per language: inline SVG from :mod:`harness.report.svg`), and what could not be checked. The HTML has
its CSS inline and loads nothing (no scripts, fonts or images), so it renders the
same offline, archived or attached to an e-mail; every value from a claim or record
is escaped, because a claim file is written by the party being checked.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from harness._internal.files import atomic_write
from harness.audit.claim_result import ALPHA, CONFIDENCE, EXIT_CODES, ClaimResult, GroupRow
from harness.report import svg
from harness.signing.policy import PackageStatus

MARKDOWN_NAME = "claim-report.md"
HTML_NAME = "claim-report.html"
JSON_NAME = "claim-report.json"

_VERDICT_TEXT = {
    "consistent": "CONSISTENT: our evidence supports the claim",
    "inconsistent": "INCONSISTENT: our evidence contradicts the claim",
    "unverifiable": "UNVERIFIABLE: the claim could not be checked completely",
    "awaiting review": "AWAITING REVIEW: our run must be reviewed by people before it backs or refutes a claim",
}

_HOW_TO_READ = [
    "consistent: every check that applies passed, and our own run does not contradict the claimed value.",
    "inconsistent: at least one statement of the claim is shown false (the vendor's record is not signed by "
    "the named signer, ran another package or model, states another value, or our run makes the claimed "
    f"value implausible: p < {ALPHA}).",
    "unverifiable: nothing was shown false, but a check could not be completed (see 'What could not be checked').",
    "awaiting review: the package (or the reviewer) requires people to review our run first (label every answer "
    "its scorer marked uncertain, then approve it); nothing is decided until they have (docs/review.md).",
    f"p is the probability, were the claim true, of a result at least as far from it as ours: an exact "
    f"two-sided binomial test of our count against the claimed rate. The interval is a {int(CONFIDENCE * 100)}% "
    "Clopper-Pearson (exact) interval for our estimate.",
    "Exit status of `harness claim check`: "
    + ", ".join(f"{v} {k}" for k, v in EXIT_CODES.items()) + ", 2 bad input.",
]


def _num(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def _p(x: float) -> str:
    return f"{x:.3g}"


def _review_parts(r: ClaimResult) -> tuple[list[str], list[tuple[str, str]], list[list[str]]]:
    """What a person checked of our run: summary lines, the approval, and each label (sample, label,
    what the scorer said, who, when, note). Empty when nobody labelled or approved anything."""
    rv = r.review
    if not rv:
        return [], [], []
    summary = [f"Review state: {rv.get('state')}"
               + (f" (required by {', '.join(rv.get('required_by', []))})" if rv.get("required_by") else ""),
               f"{rv.get('uncertain', 0)} answers were marked uncertain by the scorer; "
               f"{len(rv.get('unlabelled', []))} have no human label.",
               f"Reviewers who labelled answers: {', '.join(rv.get('reviewers', [])) or 'none'}."]
    summary += [f"Awaiting: {x}" for x in rv.get("reasons", [])]
    ap = rv.get("approval") or {}
    approval = [("Approved by", str(ap.get("reviewer", ""))), ("Approved at", f"entry {ap.get('seq')}, {ap.get('time')}"),
                ("Approval note", str(ap.get("note", "")))] if ap else [("Approval", "none that follows the last label")]
    labels = [[str(x.get("sample")), str(x.get("language")), str(x.get("label")), str(x.get("scorer_verdict")),
               str(x.get("reviewer")), f"entry {x.get('entry')}, {x.get('time')}", str(x.get("note", ""))]
              for x in rv.get("labels", [])]
    return summary, approval, labels


_LABEL_HEAD = ["Sample", "Language", "Label", "Scorer said", "Reviewer", "When", "Note"]


def _claim_rows(r: ClaimResult) -> list[tuple[str, str]]:
    c = r.claim
    rows = [("Vendor", c.vendor.name)]
    if c.vendor.contact:
        rows.append(("Vendor contact", c.vendor.contact))
    if c.source:
        rows.append(("Published at", c.source))
    rows += [
        ("Model", c.model.name),
        ("Model weights digest", c.model.digest or "not given"),
        ("Package", c.package.name),
        ("Package version", c.package.version or "not given"),
        ("Package seal", c.package.seal or "not given"),
        ("Metric", c.metric.name),
        ("Slice", c.metric.group),
        ("Claimed value", f"{c.metric.value:g}"),
    ]
    vr = c.vendor_record
    if vr is None:
        rows.append(("Vendor's signed record", "none supplied"))
    else:
        rows.append(("Vendor's signed record", f"{vr.record} (bundle {vr.bundle or 'record.sigstore.json beside it'})"))
        rows.append(("Expected signer", vr.signer.describe() if vr.signer else "not named by the claim"))
    rows += [("Claim file", f"{Path(r.claim_path).name} (sha256 {r.claim_sha256})")]
    return rows


def _comparison_rows(r: ClaimResult) -> list[tuple[str, str]]:
    cmp = r.comparison
    if cmp is None:
        return [("Comparison", "not made: no verified run of ours could be compared with the claim")]
    return [
        ("Claimed value", _num(cmp.claimed)),
        ("Our estimate", f"{_num(cmp.estimate)} ({cmp.successes} of {cmp.n} samples)"),
        (f"Our {int(cmp.confidence * 100)}% CI", f"[{_num(cmp.ci_low)}, {_num(cmp.ci_high)}] (Clopper-Pearson)"),
        ("p if the claim were true", f"{_p(cmp.p_value)} (exact two-sided binomial test; inconsistent below {cmp.alpha})"),
        ("Group", cmp.group),
    ]


_STATUS_WORDS = {
    PackageStatus.OFFICIAL: "official (its seal is pinned in the reviewer's trust policy)",
    PackageStatus.NOT_OFFICIAL: "NOT official (the trust policy pins another seal)",
    PackageStatus.UNPINNED: "no official seal pinned in the trust policy; the local sealed copy was used",
}


def _run_rows(r: ClaimResult) -> list[tuple[str, str]]:
    rows = [("Official package", _STATUS_WORDS[r.package_status])]
    if r.vendor_shipped_key:
        rows.append(("Key shipped in the claim folder",
                     f"{r.vendor_shipped_key['hint']} ({r.vendor_shipped_key['path']}): UNVERIFIED, shown only; "
                     "it does not authenticate the vendor's record"))
    if r.our_run:
        o = r.our_run
        rows.append(("Our run", f"{o['run_id']} (dossier entry {o['entry']}, {o['status']}, {o['samples']} samples, "
                                f"signed by {o['signer']})"))
        rows.append(("Our run's model", f"{o['model']['name']} (digest {o['model']['digest']})"))
        rows.append(("Our run's overrides", str(o["overrides"]) if o["overrides"] else "none"))
        rows.append(("Dossier head", o["dossier_head"]))
    if r.vendor_run:
        v = r.vendor_run
        rows.append(("Vendor's run", f"{v['run_id']} ({v['status']}, signed by {v['signer']})"))
        rows.append(("Vendor's package", f"{v['package']['name']} {v['package']['version']} seal {v['package']['seal']}"))
        rows.append(("Vendor's model", f"{v['model']['name']} (digest {v['model']['digest']})"))
        rows.append(("Vendor's overrides", str(v["overrides"]) if v["overrides"] else "none"))
    return rows


def _group_table(rows: list[GroupRow], has_vendor: bool) -> tuple[list[str], list[list[str]]]:
    head = ["Group", "Ours", f"{int(CONFIDENCE * 100)}% CI", "Count", *(["Vendor's record"] if has_vendor else [])]
    body = []
    for g in rows:
        line = [g.group.partition(":")[2], _num(g.value), f"[{_num(g.ci_low)}, {_num(g.ci_high)}]", f"{g.successes}/{g.n}"]
        if has_vendor:
            line.append(_num(g.vendor_value))
        body.append(line)
    return head, body


# ------------------------------------------------------------------ Markdown


def _md_cell(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _md_table(head: list[str], body: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(_md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in body]
    return out


def to_markdown(r: ClaimResult) -> str:
    c = r.claim
    has_vendor = r.vendor_run is not None
    lines = [
        f"# Procurement claim check: {_md_cell(c.vendor.name)}, {_md_cell(c.model.name)} on {_md_cell(c.package.name)}",
        "",
        f"**Verdict: {r.verdict.upper()}**: {_VERDICT_TEXT[r.verdict].split(': ', 1)[1]}.",
        "",
        *[f"- {_md_cell(x)}" for x in r.reasons()],
        "",
        "## The claim",
        "",
        *_md_table(["Field", "Value"], [[k, v] for k, v in _claim_rows(r)]),
        "",
        "## Our run against the claim",
        "",
        *_md_table(["", ""], [[k, v] for k, v in _comparison_rows(r) + _run_rows(r)]),
        "",
        "## Verification steps",
        "",
        *_md_table(["#", "Step", "Outcome", "Detail"],
                   [[str(i), s.title, s.outcome.upper(), s.detail] for i, s in enumerate(r.steps, 1)]),
        "",
        f"## Per-language results ({_md_cell(c.metric.name)})",
        "",
    ]
    if r.languages:
        lines += _md_table(*_group_table(r.languages, has_vendor))
    else:
        lines.append("No per-language figures (no run of ours, or the metric has none).")
    lines += ["", f"## Per-category results ({_md_cell(c.metric.name)})", ""]
    if r.categories:
        lines += _md_table(*_group_table(r.categories, has_vendor))
    else:
        lines.append("No per-category figures (no run of ours, or the metric has none).")
    summary, approval, labels = _review_parts(r)
    if summary:
        lines += ["", "## What a person checked", "", *[f"- {_md_cell(x)}" for x in summary], "",
                  *_md_table(["", ""], [[k, v] for k, v in approval])]
        if labels:
            lines += ["", *_md_table(_LABEL_HEAD, labels)]
    lines += ["", "## What could not be checked", ""]
    lines += [f"- {_md_cell(x)}" for x in r.limitations] or ["- Nothing: every check applied and was completed."]
    lines += ["", "## How to read this report", "", *[f"- {x}" for x in _HOW_TO_READ], "",
              f"Checked {r.checked_at} by llm-safety-harness {r.harness_version}.", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ HTML

_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:2rem auto;max-width:64rem;
padding:0 1rem;color:#1b1f24;background:#fff;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.92rem}
th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f6f8fa}thead th{white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.verdict{padding:1rem 1.2rem;border-radius:.4rem;margin:1rem 0;border:2px solid}
.verdict strong{font-size:1.3rem}
.v-consistent{background:#dafbe1;border-color:#1a7f37}.v-inconsistent{background:#ffebe9;border-color:#cf222e}
.v-unverifiable,.v-awaiting{background:#fff8c5;border-color:#9a6700}
.o{font-weight:600;white-space:nowrap}.o-passed{color:#1a7f37}.o-failed{color:#cf222e}
.o-not-checked{color:#9a6700}.o-not-applicable{color:#57606a}
footer{margin-top:2rem;color:#57606a;font-size:.85rem}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#57606a}svg.plot{max-width:100%;height:auto}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _html_table(head: list[str], body: list[list[str]], *, table_id: str | None = None,
                numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    attr = f' id="{_e(table_id)}"' if table_id else ""
    out = [f"<table{attr}><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for row in body:
        out.append("<tr>" + "".join(
            f'<td class="num">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>" for i, c in enumerate(row)
        ) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _kv_table(rows: list[tuple[str, str]], table_id: str) -> str:
    body = "".join(f"<tr><th scope=\"row\">{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table id="{_e(table_id)}"><tbody>{body}</tbody></table>'


def to_html(r: ClaimResult) -> str:
    c = r.claim
    has_vendor = r.vendor_run is not None
    title = f"Procurement claim check: {c.vendor.name}, {c.model.name} on {c.package.name}"
    steps = "".join(
        f'<tr><td class="num">{i}</td><td>{_e(s.title)}</td>'
        f'<td class="o o-{_e(s.outcome.replace(" ", "-"))}">{_e(s.outcome.upper())}</td><td>{_e(s.detail)}</td></tr>'
        for i, s in enumerate(r.steps, 1)
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing may be fetched: no scripts, no external styles, fonts or images.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<div id="verdict" class="verdict v-{_e(r.verdict.split()[0])}"><strong>Verdict: {_e(r.verdict.upper())}</strong>'
        f"<div>{_e(_VERDICT_TEXT[r.verdict].split(': ', 1)[1])}.</div><ul>"
        + "".join(f"<li>{_e(x)}</li>" for x in r.reasons()) + "</ul></div>",
        "<h2>The claim</h2>", _kv_table(_claim_rows(r), "claim"),
        "<h2>Our run against the claim</h2>", _kv_table(_comparison_rows(r) + _run_rows(r), "comparison"),
        "<h2>Verification steps</h2>",
        '<table id="steps"><thead><tr><th>#</th><th>Step</th><th>Outcome</th><th>Detail</th></tr></thead>'
        f"<tbody>{steps}</tbody></table>",
        f"<h2>Per-language results ({_e(c.metric.name)})</h2>",
    ]
    for rows, tid, what in ((r.languages, "per-language", "per-language"), (r.categories, "per-category", "per-category")):
        if tid == "per-category":
            parts.append(f"<h2>Per-category results ({_e(c.metric.name)})</h2>")
        if rows:
            head, body = _group_table(rows, has_vendor)
            if tid == "per-language":
                parts.append(_claim_plot(r))
            parts.append(_html_table(head, body, table_id=tid, numeric={1, 2, 3, 4}))
        else:
            parts.append(f'<p id="{tid}">No {what} figures (no run of ours, or the metric has none).</p>')
    summary, approval, labels = _review_parts(r)
    if summary:
        parts.append("<h2>What a person checked</h2><ul id=\"review\">")
        parts += [f"<li>{_e(x)}</li>" for x in summary]
        parts += ["</ul>", _kv_table(approval, "approval")]
        if labels:
            parts.append(_html_table(_LABEL_HEAD, labels, table_id="labels"))
    parts.append("<h2>What could not be checked</h2><ul id=\"limitations\">")
    parts += [f"<li>{_e(x)}</li>" for x in r.limitations] or ["<li>Nothing: every check applied and was completed.</li>"]
    parts.append("</ul><h2>How to read this report</h2><ul>")
    parts += [f"<li>{_e(x)}</li>" for x in _HOW_TO_READ]
    parts.append(f"</ul><footer>Checked {_e(r.checked_at)} by llm-safety-harness {_e(r.harness_version)}.</footer>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _claim_plot(r: ClaimResult) -> str:
    """The claimed value (a dashed line) against our interval per language, and the vendor's record's
    values (hollow diamonds) when it verified; generated SVG (:mod:`harness.report.svg`), nothing loaded."""
    points = [svg.Point(g.group.partition(":")[2], g.value, g.ci_low, g.ci_high, f"{g.successes} of {g.n}",
                        other=g.vendor_value) for g in r.languages]
    plot = svg.forest(points, ident="claim-plot", reference=r.claim.metric.value, reference_label="claimed",
                      other_label="vendor's record",
                      title=f"{r.claim.metric.name}: the claimed value against our {int(CONFIDENCE * 100)}% interval "
                            "per language")
    return (f'<figure id="claim-figure">{plot}<figcaption>Dots: our estimate per language; bars: its '
            f"{int(CONFIDENCE * 100)}% Clopper-Pearson interval; dashed line: the claimed value "
            f"{_e(_num(r.claim.metric.value))}. The table below has the same numbers.</figcaption></figure>")


def write_reports(r: ClaimResult, out_dir: Path) -> dict[str, Path]:
    """Write the Markdown, HTML and JSON reports into ``out_dir``; returns their paths."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / MARKDOWN_NAME, "html": out_dir / HTML_NAME, "json": out_dir / JSON_NAME}
    atomic_write(paths["markdown"], to_markdown(r).encode("utf-8"))
    atomic_write(paths["html"], to_html(r).encode("utf-8"))
    atomic_write(paths["json"], (json.dumps(r.as_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return paths
