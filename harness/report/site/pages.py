"""The pages of one package: its dossier timeline with plots across runs, and one page per run.

The package page answers "what happened to this benchmark over time, and can I trust
it": the dossier's verification state when the site was built, each metric per language
and per category across the latest runs (plots with their intervals, and the numbers in a
table), and the timeline of every entry (runs, reproductions, rescores, baseline changes,
reviews, diagnoses, and any later kind, shown from its signed summary) with each entry's
own verification state. A run page shows the run's facts, its baseline verdicts, its
metrics per group (plots and tables) and the per-sample browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.dossier.log import Entry, EventEntry
from harness.record import RunRecord
from harness.report import svg
from harness.report.layout import plural
from harness.report.site.html import ci, clip, e, kv, page, pct, table, tag, verdict
from harness.report.site.model import EntryState, PackageView, RunInfo
from harness.report.site.samples import Browser

PLOT_RUNS = 40
"""Runs shown in the plots across runs (the latest ones): enough to see a trend, and a
page of a 10,000-run dossier stays small. The timeline lists every run."""


def run_file(seq: int, k: int = 0) -> str:
    """The file of run ``seq``'s page ``k`` (0: the run page itself)."""
    return f"run-{seq}.html" if k == 0 else f"run-{seq}-samples-{k + 1}.html"


def diff_file(a: int, b: int) -> str:
    return f"diff-{a}-{b}.html"


def state_cell(s: EntryState) -> str:
    if s.problems:
        return tag("FAILED", "bad") + "<ul>" + "".join(f"<li>{e(p)}</li>" for p in s.problems) + "</ul>"
    if s.verified:
        return tag("VERIFIED", "ok") + f" signed by {e(s.signer)}"
    return tag("NOT CHECKED", "warn") + " verification stopped before this entry"


def banner(pv: PackageView, trust: str, what: str = "dossier") -> str:
    """The dossier's state: verified when the site was built, against whose trust, or what failed."""
    r = pv.report
    when = f"when this site was built ({e(pv.verified_at)}), against {e(trust)}"
    if pv.error or r is None:
        return (f'<div class="state bad" id="verification">{tag("FAILED", "bad")} The {what} could not be read: '
                f"{e(pv.error or 'no report')}</div>")
    if r.ok:
        cp = (f"; checkpoint of {plural(r.checkpoint.head.size, 'entry', 'entries')} signed by "
              f"{e(r.checkpoint.signer)}" if r.checkpoint else "")
        warn = "".join(f"<li>note: {e(w.what)}</li>" for w in r.warnings)
        return (f'<div class="state ok" id="verification">{tag("VERIFIED", "ok")} Verified {when}: '
                f"{plural(r.entries, 'entry', 'entries')}, hash chain intact, every signature and digest valid{cp}. Head "
                f"<code>{e(r.head[:16])}\u2026</code>.{f'<ul>{warn}</ul>' if warn else ''}</div>")
    items = "".join(f"<li>{e(p)}</li>" for p in pv.general_problems())
    n = len(r.problems)
    return (f'<div class="state bad" id="verification">{tag("FAILED", "bad")} Verification failed {when}: {n} '
            f"problem{'s' if n != 1 else ''}. Do not rely on the entries marked FAILED."
            f"{f'<ul>{items}</ul>' if items else ''}</div>")


def _metric_names(records: Sequence[RunRecord]) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        for m in r.metrics:
            seen.setdefault(m.metric, None)
    return list(seen)


def _groups(records: Sequence[RunRecord], metric: str, prefix: str) -> list[str]:
    seen: dict[str, None] = {}
    for r in records:
        for m in r.metrics:
            if m.metric == metric and m.group.startswith(prefix):
                seen.setdefault(m.group, None)
    return sorted(seen)


def _trend_section(pv: PackageView, runs: Sequence[RunInfo], metric: str) -> str:
    records = [r.record for r in runs if r.record is not None]
    by_run = [(r.seq, {m.group: m for m in r.record.metrics if m.metric == metric}) for r in runs if r.record]
    out = [f'<h3 id="trend-{e(metric)}">{e(metric)}</h3><div class="plots">']
    rows: list[list[str]] = []
    for prefix, what in (("language:", "per language"), ("category:", "per category")):
        groups = (["overall"] if prefix == "language:" else []) + _groups(records, metric, prefix)
        if len(groups) <= (1 if prefix == "language:" else 0):
            continue
        panels = [(g.partition(":")[2] or g, [
            svg.Point(f"#{seq}", m.value, m.ci_low, m.ci_high, f"run #{seq}, {m.successes} of {m.n}")
            if (m := ms.get(g)) else svg.Point(f"#{seq}", None) for seq, ms in by_run]) for g in groups]
        ident = f"plot-{pv.slug}-{metric}-{prefix[:-1]}"
        out.append(f"<figure>{svg.trend(panels, ident=ident, title=f'{metric} {what} across runs')}"
                   f"<figcaption>{e(metric)} {what}, runs {e(by_run[0][0])} to {e(by_run[-1][0])} "
                   "(dot: estimate; bar: 95% interval). The numbers are in the table below.</figcaption></figure>")
        rows += [[f"#{seq}", g, pct(m.value), ci(m.ci_low, m.ci_high), f"{m.successes}/{m.n}"]
                 for seq, ms in by_run for g in groups if (m := ms.get(g))]
    out.append("</div>")
    if rows:
        out.append(f"<details><summary>The numbers behind the {e(metric)} plots ({len(rows)} rows)</summary>"
                   + table(["run", "group", "value", "95% CI", "count"], rows, numeric=(2, 3, 4)) + "</details>")
    return "".join(out)


def _entry_what(pv: PackageView, x: Entry | EventEntry, here: str) -> str:
    """What an entry is about, as HTML: a run's headline metrics, or an event's signed summary."""
    if isinstance(x, Entry):
        info = pv.run(x.seq)
        if info is None or info.record is None:
            return f"<em>record unreadable: {e(info.error if info else '?')}</em>"
        r = info.record
        metrics = "; ".join(f"{e(m.metric)} {pct(m.value)} {ci(m.ci_low, m.ci_high)}"
                            for m in r.metrics if m.group == "overall")
        flags = " " + tag("SUBSET", "warn") if r.is_subset else ""
        word = gate_word(r)
        gate = f" {tag(f'GATE {word}', {'FAIL': 'bad', 'PASS': 'ok'}.get(word, 'warn'))}" if word else ""
        return (f"{e(r.model.name)}, {r.outputs.samples} samples, {e(r.status)}{flags}{gate}<br>"
                f"<small>{metrics}</small>")
    about = pv.refers.get(x.seq)
    ref = f'about <a href="{_entry_href(pv, about, here)}">#{about}</a>: ' if about else ""
    summary = x.summary.model_dump(mode="json")
    items = "; ".join(f"{e(k)}: {e(clip(_short(v), 200))}" for k, v in summary.items())
    return f"{ref}<small>{items}</small>"


def gate_word(r: RunRecord) -> str | None:
    """The run's gate in one word: FAIL if any baseline fails, else INCONCLUSIVE if any is, else PASS."""
    if not r.baselines:
        return None
    words = {b.verdict or ("PASS" if b.passed else "FAIL") for b in r.baselines}
    return next((w for w in ("FAIL", "INCONCLUSIVE") if w in words), "PASS")


def _short(v: Any) -> str:
    if isinstance(v, list | tuple):
        return ", ".join(str(x) for x in v) or "none"
    return str(v)


TIMELINE_ROWS = 500
"""Entries per timeline page: the package page holds the latest ones, older ones have pages
of their own (``timeline-<k>.html``), so a dossier of 10,000 entries never makes a huge page."""


def timeline_files(pv: PackageView) -> list[tuple[str, list[Entry | EventEntry]]]:
    """The timeline cut into pages, oldest first; the last (latest entries) is the package page."""
    parts = [pv.entries[i:i + TIMELINE_ROWS] for i in range(0, len(pv.entries), TIMELINE_ROWS)] or [[]]
    return [("index.html" if k == len(parts) - 1 else f"timeline-{k + 1}.html", part) for k, part in enumerate(parts)]


def _entry_href(pv: PackageView, seq: int, here: str) -> str:
    """Where entry ``seq`` is listed, from the timeline page ``here``."""
    k = (seq - 1) // TIMELINE_ROWS
    last = (max(len(pv.entries), 1) - 1) // TIMELINE_ROWS
    where = "index.html" if k == last else f"timeline-{k + 1}.html"
    return f"#e{seq}" if where == here else f"{where}#e{seq}"


def timeline(pv: PackageView, diffs: dict[int, str], entries: Sequence[Entry | EventEntry], here: str) -> str:
    rows = []
    for x in entries:
        ident = x.run_id if isinstance(x, Entry) else x.id
        info = pv.run(x.seq) if isinstance(x, Entry) else None
        if info is not None and info.record is not None:
            ident_html = f'<a href="{e(run_file(x.seq))}">{e(ident)}</a>'
        else:
            ident_html = e(ident)
        later = ", ".join(f'{e(k)} <a href="{_entry_href(pv, s, here)}">#{s}</a>' for k, s in pv.later.get(x.seq, []))
        diff = f'<a href="{e(diffs[x.seq])}">diff with previous run</a>' if x.seq in diffs else ""
        rows.append(f'<tr id="e{x.seq}"><td class="num">{x.seq}</td><td>{e(x.time)}</td><td class="nw">{e(x.kind)}</td>'
                    f"<td>{ident_html}</td><td>{_entry_what(pv, x, here)}</td><td>{state_cell(pv.states[x.seq])}</td>"
                    f"<td>{later}{'<br>' if later and diff else ''}{diff}</td></tr>")
    head = "".join(f'<th scope="col">{h}</th>' for h in ("#", "time (UTC)", "kind", "id", "what", "verification",
                                                            "later / compare"))
    return (f'<table id="timeline"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            if rows else "<p>The dossier has no entries.</p>")


def _timeline_nav(files: Sequence[tuple[str, list[Entry | EventEntry]]], here: str) -> str:
    if len(files) < 2:
        return ""
    links = [f'<span aria-current="page">{part[0].seq}–{part[-1].seq}</span>' if name == here else
             f'<a href="{e(name)}#timeline-h">{part[0].seq}–{part[-1].seq}</a>' for name, part in files]
    return f'<nav class="pages" aria-label="Timeline pages">Entries: {"".join(links)}</nav>'


def timeline_page(pv: PackageView, name: str, entries: Sequence[Entry | EventEntry], *, diffs: dict[int, str],
                  footer: str) -> str:
    """An older part of the timeline, on a page of its own."""
    nav = _timeline_nav(timeline_files(pv), name)
    body = (f'<h2 id="timeline-h">Entries {entries[0].seq} to {entries[-1].seq} of {len(pv.entries)}</h2>{nav}'
            + timeline(pv, diffs, entries, name) + nav)
    return page(f"Dossier: {pv.name}, entries {entries[0].seq}–{entries[-1].seq}", body, footer=footer,
                crumbs=[("All packages", "../index.html"), (pv.name, "index.html"), ("older entries", None)])


def package_page(pv: PackageView, *, trust: str, diffs: dict[int, str], pairs: Sequence[tuple[str, str]],
                 footer: str) -> str:
    """``<package>/index.html``."""
    body = [banner(pv, trust), '<nav class="toc" aria-label="On this page"><a href="#across-runs">Metrics across '
            'runs</a><a href="#timeline-h">Timeline</a></nav>']
    runs = [r for r in pv.runs if r.record is not None]
    shown = runs[-PLOT_RUNS:]
    if shown:
        body.append('<h2 id="across-runs">Metrics across runs</h2>')
        if len(runs) > len(shown):
            body.append(f"<p>The latest {len(shown)} of {len(runs)} runs; the timeline below lists every run.</p>")
        body += [_trend_section(pv, shown, m) for m in _metric_names([r.record for r in shown if r.record])]
    if pairs:
        body.append('<h2 id="comparisons">Chosen comparisons</h2><ul>'
                    + "".join(f'<li><a href="{e(href)}">{e(label)}</a></li>' for label, href in pairs) + "</ul>")
    files = timeline_files(pv)
    latest = files[-1][1]
    span = f" (entries {latest[0].seq} to {latest[-1].seq} here; older ones on the pages linked)" if len(files) > 1 \
        else ""
    body.append(f'<h2 id="timeline-h">Timeline ({plural(len(pv.entries), "entry", "entries")})</h2>'
                f"<p>Every entry of the dossier, oldest first, with its state when this site was built{span}.</p>")
    nav = _timeline_nav(files, "index.html")
    body += [nav, timeline(pv, diffs, latest, "index.html"), nav]
    return page(f"Dossier: {pv.name}", "".join(body), crumbs=[("All packages", "../index.html"), (pv.name, None)],
                footer=footer)


def _facts(info: RunInfo, r: RunRecord) -> list[tuple[str, str]]:
    g = r.generation
    return [
        ("Run id", r.run_id), ("Dossier entry", f"#{info.seq}"), ("Status", r.status),
        ("Subset", "yes: " + str(r.overrides.model_dump(mode="json")) if r.is_subset else "no, the whole package"),
        ("Started / finished (UTC)", f"{r.started_at} / {r.finished_at} ({r.duration_s:.1f} s)"),
        ("Package", f"{r.package.name} {r.package.version}, seal {r.package.seal}"),
        ("Model", f"{r.model.name} ({r.model.backend}), digest {r.model.digest}"),
        ("Engine", str(r.model.engine.model_dump(mode="json", exclude_none=True) or "in-process")),
        ("Generation", f"max_tokens {g.max_tokens}, temperature {g.temperature}, top_p {g.top_p}"),
        ("Run seed", str(r.seeds.run)),
        ("Overrides", str(r.overrides.model_dump(mode="json")) if not r.overrides.is_empty() else "none"),
        ("Scorer", str(r.scorer.model_dump(mode="json", exclude_none=True))),
        ("Environment", f"lockfile {'matches' if r.lockfile.matches else 'does NOT match'}; harness "
                        f"{r.harness.version}"),
        ("Outputs", f"{r.outputs.samples} samples, {r.outputs.errors} errors"),
    ]


def _baselines(r: RunRecord) -> str:
    if not r.baselines:
        return "<p>The package states no baselines for this model.</p>"
    rows = [[b.metric, b.group, pct(b.expected), f"{b.tolerance * 100:.1f}", pct(b.observed), ci(b.ci_low, b.ci_high),
             verdict(b.verdict or ("PASS" if b.passed else "FAIL")),
             "none" if b.min_detectable_change is None else f"{b.min_detectable_change * 100:.1f}"] for b in r.baselines]
    return table(["metric", "group", "expected", "tolerance (points)", "observed", "95% CI", "verdict", "MDC (points)"],
                 rows, ident="baselines", numeric=(2, 3, 4, 5, 7), raw=(6,))


def _metrics(info: RunInfo, r: RunRecord) -> str:
    out = []
    for metric in _metric_names([r]):
        rows = [m for m in r.metrics if m.metric == metric]
        out.append(f'<h3 id="m-{e(metric)}">{e(metric)}</h3><div class="plots">')
        for prefix, what in (("language:", "per language"), ("category:", "per category")):
            pts = [svg.Point(m.group.partition(":")[2], m.value, m.ci_low, m.ci_high, f"{m.successes} of {m.n}")
                   for m in rows if m.group.startswith(prefix)]
            if pts:
                overall = next((m for m in rows if m.group == "overall"), None)
                pts = ([svg.Point("overall", overall.value, overall.ci_low, overall.ci_high,
                                  f"{overall.successes} of {overall.n}")] if overall else []) + pts
                out.append("<figure>" + svg.forest(pts, ident=f"forest-{info.seq}-{metric}-{prefix[:-1]}",
                                                   title=f"{metric} {what}, run #{info.seq}")
                           + f"<figcaption>{e(metric)} {what} (dot: estimate; bar: 95% interval).</figcaption></figure>")
        out.append("</div>")
        out.append(table(["group", "value", "95% CI", "count", "interval"],
                         ([m.group, pct(m.value), ci(m.ci_low, m.ci_high), f"{m.successes}/{m.n}",
                           m.ci_method or "as recorded"] for m in rows),
                         ident=f"metrics-{metric}", numeric=(1, 2, 3)))
    return "".join(out)


def run_pages(pv: PackageView, info: RunInfo, browser: Browser, *, trust: str, prev_seq: int | None,
              next_seq: int | None, diff_href: str | None, footer: str, review: str = "") -> list[str]:
    """The run page (facts, baselines, metrics, the first samples) and any further sample pages."""
    r = info.record
    assert r is not None
    crumbs: list[tuple[str, str | None]] = [("All packages", "../index.html"), (pv.name, "index.html"),
                                            (f"run #{info.seq}", None)]
    links = [f'<a href="{e(run_file(prev_seq))}" rel="prev">previous run #{prev_seq}</a>' if prev_seq else "",
             f'<a href="{e(diff_href)}">diff with the previous run</a>' if diff_href else "",
             f'<a href="{e(run_file(next_seq))}" rel="next">next run #{next_seq}</a>' if next_seq else ""]
    nav = '<p class="pages">' + " ".join(x for x in links if x) + "</p>"
    state = pv.states[info.seq]
    when = f"when this site was built ({e(pv.verified_at)}), against {e(trust)}"
    box = (f'<div class="state {"ok" if state.verified else "bad"}" id="verification">'
           + (f"{tag('VERIFIED', 'ok')} Verified {when}: signature by {e(state.signer)}, record and outputs digests, "
              "and the dossier entry's fields." if state.verified else
              f"{tag(state.word, 'bad')} Not verified {when}. Do not rely on this run."
              + "<ul>" + "".join(f"<li>{e(p)}</li>" for p in state.problems) + "</ul>") + "</div>")
    if not pv.ok and state.verified:
        box += f'<p>{tag("NOTE", "warn")} The dossier as a whole has problems: see the <a href="index.html">' \
               "package page</a>.</p>"
    title = f"{pv.name}: run #{info.seq}"
    first = "".join([box, nav, '<h2 id="facts">The run</h2>', kv(_facts(info, r)),
                     '<h2 id="gate">Baseline verdicts (the release gate)</h2>', _baselines(r),
                     '<h2 id="metrics">Metrics</h2>', _metrics(info, r), review, browser.pages[0], nav])
    pages = [page(title, first, crumbs=crumbs, script=True, footer=footer)]
    for k, section in enumerate(browser.pages[1:], 1):
        body = (f'<p><a href="{e(run_file(info.seq))}">Back to run #{info.seq}</a> (facts, gate, metrics).</p>'
                + section)
        pages.append(page(f"{title}: samples page {k + 1}", body, crumbs=crumbs[:2] +
                          [(f"run #{info.seq}", run_file(info.seq)), (f"samples page {k + 1}", None)],
                          script=True, footer=footer))
    return pages
