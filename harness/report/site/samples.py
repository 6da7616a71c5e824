"""The per-sample browser of a run page, and the diff page between two runs.

A run of 100,000 samples must not make a 100 MB page: rows are cut into pages of at most
:data:`ROWS_PER_PAGE` rows and :data:`BYTES_PER_PAGE` bytes of rows (the rest of a page is
a few kilobytes), and each prompt or response longer than :data:`TEXT_LIMIT` characters is
cut with its length said, so every page stays well under 2 MB whatever the run holds.
``harness show REF --sample ID`` prints any sample whole. Filtering and search (the one
script) work on the rows of the page they are on; without JavaScript every row is listed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.audit.show import SampleView
from harness.diff import DiffReport
from harness.report.site.html import ci, clip, e, filter_form, pct, table, tag, verdict

ROWS_PER_PAGE = 1000
BYTES_PER_PAGE = 1_200_000
TEXT_LIMIT = 8000
FLIPS_SHOWN = 500


def sample_row(s: SampleView, *, other: SampleView | None = None) -> str:
    """One ``<tr>`` with data attributes the filter reads (escaped like every value)."""
    prompt = e(clip(s.prompt, TEXT_LIMIT)) if s.prompt is not None else "<em>not available</em>"
    resp = e(clip(s.response, TEXT_LIMIT)) if s.response is not None else f"<em>none ({e(s.error or 'no answer')})</em>"
    cells = [f"<td>{e(s.id)}</td>", f"<td>{e(s.language)}</td>", f"<td>{e(s.category)}</td>",
             f"<td>{e(s.expected)}</td>"]
    if other is not None:
        other_resp = (e(clip(other.response, TEXT_LIMIT)) if other.response is not None
                      else f"<em>none ({e(other.error or 'no answer')})</em>")
        cells += [f"<td>{verdict(other.verdict)}</td>", f"<td>{verdict(s.verdict)}</td>",
                  f'<td class="text">{prompt}</td>', f'<td class="text">{other_resp}</td>',
                  f'<td class="text">{resp}</td>']
    else:
        cells += [f"<td>{verdict(s.verdict)}</td>", f'<td class="text">{prompt}</td>', f'<td class="text">{resp}</td>']
    return (f'<tr id="s-{e(s.id)}" data-language="{e(s.language)}" data-category="{e(s.category)}" '
            f'data-verdict="{e(s.verdict)}">' + "".join(cells) + "</tr>")


def chunks(rows: Sequence[str]) -> list[list[str]]:
    """Rows cut into pages by count and by bytes; always at least one (maybe empty) page."""
    pages: list[list[str]] = [[]]
    size = 0
    for r in rows:
        n = len(r.encode("utf-8"))
        if pages[-1] and (len(pages[-1]) >= ROWS_PER_PAGE or size + n > BYTES_PER_PAGE):
            pages.append([])
            size = 0
        pages[-1].append(r)
        size += n
    return pages


def _values(samples: Sequence[SampleView], attr: str) -> list[str]:
    return sorted({str(getattr(s, attr)) for s in samples})


@dataclass(frozen=True)
class Browser:
    """A run's samples as pages: ``pages[k]`` is the HTML of page k+1's browser section."""

    pages: list[str]
    counts: list[int]


def browser(samples: Sequence[SampleView], where: str, name: Callable[[int], str]) -> Browser:
    """The sample browser, one section per page; ``name(k)`` is page k's file name (for links)."""
    rows = [sample_row(s) for s in samples]
    pages = chunks(rows)
    fields = [("language", "Language", _values(samples, "language")),
              ("category", "Category", _values(samples, "category")),
              ("verdict", "Verdict", _values(samples, "verdict"))]
    out = []
    for k, page_rows in enumerate(pages):
        nav = ""
        if len(pages) > 1:
            links = [f'<span aria-current="page">page {i + 1}</span>' if i == k else
                     f'<a href="{e(name(i))}#samples">page {i + 1}</a>' for i in range(len(pages))]
            nav = f'<nav class="pages" aria-label="Sample pages">{"".join(links)}</nav>'
        first = sum(len(p) for p in pages[:k])
        span = f" (samples {first + 1} to {first + len(page_rows)} of {len(rows)}, by id)" if len(pages) > 1 else ""
        note = ("Filtering and search need JavaScript; every sample of this page is listed below."
                + (" Filters apply to the samples of this page." if len(pages) > 1 else ""))
        out.append(
            f'<section id="samples" aria-labelledby="samples-h"><h2 id="samples-h">Samples{e(span)}</h2>'
            f"<p>Prompts: {e(where)}.</p>{nav}"
            + filter_form("sample-table", fields, note)
            + '<table id="sample-table"><thead><tr>'
            + "".join(f'<th scope="col">{h}</th>' for h in
                      ("id", "language", "category", "expected", "verdict", "prompt", "response"))
            + "</tr></thead><tbody>" + "".join(page_rows) + f"</tbody></table>{nav}</section>")
    return Browser(pages=out, counts=[len(p) for p in pages])


def diff_body(d: DiffReport, flips: Sequence[tuple[SampleView, SampleView]], a_label: str, b_label: str,
              total_flips: int) -> str:
    """The body of a diff page: what changed in the inputs, the metric deltas, the flipped samples."""
    parts = []
    if d.no_change:
        parts.append(f'<div class="state ok" id="diff-summary">{tag("NO CHANGE", "ok")} The package, model, '
                     "parameters, seeds and outputs are the same.</div>")
    else:
        what = ", ".join(d.changed_sections()) or "no inputs"
        parts.append(f'<div class="state warn" id="diff-summary">{tag("CHANGED", "warn")} Inputs that differ: '
                     f"{e(what)}. Outputs {'identical' if d.outputs_identical else 'differ'}; "
                     f"{d.responses_changed} responses changed; {total_flips} verdicts flipped.</div>")
    notes = []
    if d.subset_a or d.subset_b:
        notes.append("A subset run is compared (marked SUBSET): figures cover the samples both runs have.")
    if d.only_in_a or d.only_in_b:
        notes.append(f"{d.only_in_a} samples only in {a_label}, {d.only_in_b} only in {b_label}.")
    parts += [f"<p>{e(n)}</p>" for n in notes]
    parts.append('<h2 id="inputs">What differs in the inputs</h2>')
    if d.changes:
        parts.append(table(["section", "key", a_label, b_label],
                           ([c.section, c.key, clip(str(c.a), 300), clip(str(c.b), 300)] for c in d.changes),
                           ident="changes"))
    else:
        parts.append("<p>Nothing: the same package, data, environment, model, engine, parameters, seeds and scorer.</p>")
    parts.append('<h2 id="metrics">Metric deltas</h2><p>Delta is the second run minus the first, with its 95% '
                 f"interval; p-values are {e(d.adjustment)}-adjusted over every row. A row is paired when both runs "
                 "scored exactly the same samples of that group (exact McNemar test), otherwise unpaired.</p>")
    rows = [[m.metric, m.group, pct(m.a), pct(m.b), f"{m.delta * 100:+.1f}", ci(m.ci_low, m.ci_high),
             f"{m.p_adjusted:.3g}", "yes" if m.significant else "no", "paired" if m.paired else "unpaired"]
            for m in d.metrics]
    parts.append(table(["metric", "group", a_label, b_label, "delta (points)", "95% CI of delta", "p (adjusted)",
                        "significant", "test"], rows, ident="deltas", numeric=(2, 3, 4, 5, 6)))
    parts.append(f'<h2 id="flips">Flipped samples ({total_flips})</h2>')
    if not flips:
        parts.append("<p>No sample changed its verdict.</p>")
    else:
        if total_flips > len(flips):
            parts.append(f"<p>The first {len(flips)} of {total_flips} by id; <code>harness show</code> with "
                         "<code>--flipped-against</code> lists them all.</p>")
        fields = [("language", "Language", sorted({b.language for _, b in flips})),
                  ("category", "Category", sorted({b.category for _, b in flips})),
                  ("verdict", f"Verdict in {b_label}", sorted({b.verdict for _, b in flips}))]
        parts.append(filter_form("flip-table", fields, "Filtering needs JavaScript; every flipped sample is listed."))
        head = ("id", "language", "category", "expected", f"verdict in {a_label}", f"verdict in {b_label}", "prompt",
                f"response in {a_label}", f"response in {b_label}")
        parts.append('<table id="flip-table"><thead><tr>' + "".join(f'<th scope="col">{e(h)}</th>' for h in head)
                     + "</tr></thead><tbody>" + "".join(sample_row(b, other=a) for a, b in flips) + "</tbody></table>")
    return "".join(parts)
