"""The review section of a run page: the queue of uncertain answers per language, and label histories.

What the site shows of review comes from the same places the command line reads
(:mod:`harness.audit.labels`): the run's outputs lines (``uncertain`` and its reason) and
the dossier's ``label`` entries about the run, oldest first. A label whose entry did not
verify when the site was built is shown, struck through and marked, never counted.
Everything is escaped (:func:`harness.report.site.html.e`): prompts, answers, notes and
reviewer names are received text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.audit.labels import HistoryItem, histories, labels_of
from harness.audit.show import SampleView
from harness.errors import HarnessError
from harness.report.site.html import clip, e, tag, verdict
from harness.report.site.model import PackageView, RunInfo, relative

TEXT_LIMIT = 2000


def _history(items: Sequence[HistoryItem], verified: dict[int, bool]) -> str:
    if not items:
        return "<em>no label yet</em>"
    out = []
    for h in items:
        text = (f"{e(h.label)} by {e(h.reviewer)} at {e(h.time)} (entry #{h.seq})"
                + (f": {e(clip(h.note, TEXT_LIMIT))}" if h.note else ""))
        out.append(f"<li>{text}</li>" if verified.get(h.seq) else
                   f"<li><s>{text}</s> {tag('NOT VERIFIED', 'bad')}</li>")
    return '<ol class="history">' + "".join(out) + "</ol>"


def review_section(pv: PackageView, info: RunInfo, samples: Sequence[SampleView],
                   lines: Sequence[dict[str, Any]]) -> str:
    """``<h2 id="review">`` and, per language, a table of the run's uncertain samples (prompt, answer,
    why uncertain, the scorer's verdict, the current label, its history); empty when the run has
    neither uncertain samples nor labels."""
    try:
        hist = histories(labels_of(pv.dossier, info.entry))
    except HarnessError as err:
        return f'<h2 id="review">Review</h2><p>{tag("ERROR", "bad")} {e(relative(err.message, pv))}</p>'
    verified = {seq: state.verified for seq, state in pv.states.items()}
    queued = [x for x in lines if x.get("uncertain") is True]
    ids = {str(x.get("id")) for x in queued} | set(hist)
    if not ids:
        return ""
    views = {s.id: s for s in samples}
    by_line = {str(x.get("id")): x for x in lines}
    languages: dict[str, list[str]] = {}
    for i in sorted(ids):
        languages.setdefault(str(by_line.get(i, {}).get("language", "?")), []).append(i)
    counted = {i: [h for h in hist.get(i, []) if verified.get(h.seq)] for i in ids}
    unlabelled = sum(1 for x in queued if not counted[str(x.get("id"))])
    parts = ['<h2 id="review">Review queue</h2>',
             f"<p>{len(queued)} answers were marked uncertain by the scorer; {unlabelled} have no verified human "
             "label. A label replaces the scorer's verdict in the adjudicated numbers "
             "(<code>harness review adjudicate</code>); the latest label of a sample counts.</p>"]
    for lang, members in sorted(languages.items()):
        waiting = sum(1 for i in members if by_line.get(i, {}).get("uncertain") is True and not counted[i])
        parts.append(f'<h3 id="review-{e(lang)}">{e(lang)}: {len(members)} samples, {waiting} awaiting a label</h3>')
        rows = []
        for i in members:
            line = by_line.get(i, {})
            v = views.get(i)
            prompt = e(clip(v.prompt, TEXT_LIMIT)) if v is not None and v.prompt is not None else "<em>not available</em>"
            resp = line.get("response")
            answer = e(clip(resp, TEXT_LIMIT)) if isinstance(resp, str) else "<em>none</em>"
            current = counted[i][-1].label if counted[i] else None
            rows.append(
                f'<tr id="q-{e(i)}" data-language="{e(lang)}"><td>{e(i)}</td>'
                f"<td>{e(line.get('uncertain_reason') or ('not uncertain' if not line.get('uncertain') else '?'))}</td>"
                f"<td>{verdict(str(line.get('verdict')))}</td>"
                f"<td>{verdict(current) if current else tag('AWAITING', 'warn')}</td>"
                f'<td class="text">{prompt}</td><td class="text">{answer}</td>'
                f"<td>{_history(hist.get(i, []), verified)}</td></tr>")
        parts.append(f'<table id="queue-{e(lang)}" class="queue"><thead><tr><th scope="col">Sample</th>'
                     '<th scope="col">Why uncertain</th><th scope="col">Scorer</th><th scope="col">Label</th>'
                     '<th scope="col">Prompt</th><th scope="col">Answer</th><th scope="col">Label history</th>'
                     f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    return "".join(parts)
