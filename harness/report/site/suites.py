"""Suite pages: one signed suite record as the package x model matrix with its gate.

A suite record (:mod:`harness.suite.record`, read-only here) lists every run of a
``harness suite run`` by record digest and dossier entry. Its page shows the suite's
gate verdict and the rule it was decided by, whether the record verified when the site
was built (its signature and signer, and each listed run's entry, record digest and
signature: :func:`harness.suite.verify.verify_suite`; the dossiers as a whole are
verified on their own package pages), the matrix with each pair's verdict and headline
metric linked to its run page, a plot of the headline metric per language for each
package, and every criterion and baseline the gate counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.report import svg
from harness.report.site.html import ci, e, kv, page, pct, table, tag, verdict
from harness.report.site.model import slug
from harness.signing.verify import Trusted
from harness.suite.record import (
    SUITE_BUNDLE_NAME,
    SUITE_RECORD_NAME,
    SuiteRecord,
    SuiteRun,
    parse_suite_record,
    suites_root,
)
from harness.suite.verify import verify_suite


@dataclass
class SuiteView:
    path: Path
    folder_name: str
    record: SuiteRecord | None = None
    signer: str | None = None
    verified: bool = False
    problems: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def file(self) -> str:
        name = self.record.name if self.record else self.folder_name
        ident = self.record.suite_id if self.record else self.path.parent.name
        return f"suites/{slug(name)}-{slug(ident)}.html"


def find_suites(dossiers: Path) -> list[Path]:
    """Every ``suite.json`` with its bundle under ``<dossiers>/_suites/<suite>/<id>/``, oldest id first."""
    root = suites_root(dossiers)
    if not root.is_dir():
        return []
    return sorted((p for p in root.glob(f"*/*/{SUITE_RECORD_NAME}") if (p.parent / SUITE_BUNDLE_NAME).is_file()),
                  key=lambda p: (p.parent.parent.name, p.parent.name))


def _hide(text: str, dossiers: Path) -> str:
    for prefix in sorted({str(dossiers.resolve()), str(dossiers)}, key=len, reverse=True):
        text = text.replace(prefix + "/", "").replace(prefix, "dossiers")
    return text


def load_suite_view(path: Path, dossiers: Path, trusted: Trusted) -> SuiteView:
    """Verify the suite record at ``path`` (signature, then every run it lists)."""
    sv = SuiteView(path=path, folder_name=path.parent.parent.name)
    try:
        res = verify_suite(path, trusted, dossiers_dir=dossiers, whole_dossiers=False)
    except HarnessError as err:
        sv.error = _hide(err.message, dossiers)
        try:
            sv.record = parse_suite_record(path)
        except HarnessError:
            pass
        return sv
    sv.record, sv.signer, sv.verified = res.record, res.signer, res.ok
    sv.problems = [_hide(str(p), dossiers) for p in res.problems]
    return sv


def state_tag(sv: SuiteView) -> str:
    if sv.error or sv.problems:
        return tag("FAILED", "bad")
    return tag("VERIFIED", "ok")


def _headline(run: SuiteRun) -> str:
    m = next((x for x in run.headline if x.group == "overall"), None)
    return f"{m.metric} {pct(m.value)} {ci(m.ci_low, m.ci_high)}" if m else "no headline"


def _matrix(r: SuiteRecord, runs_in_site: Mapping[tuple[str, int], str]) -> str:
    models = [m.name for m in r.models]
    rows = []
    for p in r.packages:
        cells = [f'<th scope="row">{e(p.name)} {e(p.version)}'
                 + (f"<br><small>{e(p.overrides.model_dump(mode='json'))}</small>" if not p.overrides.is_empty()
                    else "") + "</th>"]
        for model in models:
            run = r.run_of(p.name, model)
            if run is None:
                cells.append(f"<td>{tag('NO RUN', 'bad')} the pair did not finish</td>")
                continue
            href = runs_in_site.get((run.dossier, run.seq))
            ident = (f'<a href="../{e(href)}">run #{run.seq}</a>' if href else f"run #{run.seq}")
            extra = " " + tag("SUBSET", "warn") if run.subset else ""
            extra += " " + tag("INCOMPLETE", "bad") if run.status != "complete" else ""
            cells.append(f"<td>{verdict(run.gate)} {ident}{extra}<br><small>{e(_headline(run))}, "
                         f"{run.samples} samples</small></td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = '<th scope="col">package \\ model</th>' + "".join(f'<th scope="col">{e(m)}</th>' for m in models)
    return f'<table id="suite-matrix"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _plots(r: SuiteRecord) -> str:
    out = []
    for p in r.packages:
        points = []
        for m in r.models:
            run = r.run_of(p.name, m.name)
            for x in run.headline if run else ():
                group = x.group.partition(":")[2] or x.group
                points.append(svg.Point(f"{m.name} \u00b7 {group}", x.value, x.ci_low, x.ci_high,
                                        f"{x.successes} of {x.n}"))
        if points:
            ident = f"suite-plot-{slug(p.name)}"
            out.append(f"<figure>{svg.forest(points, ident=ident, title=f'{p.name}: {p.headline} per model and language')}"
                       f"<figcaption>{e(p.headline)} of {e(p.name)} per model and language (dot: estimate; bar: 95% "
                       "interval).</figcaption></figure>")
    return '<div class="plots">' + "".join(out) + "</div>" if out else ""


def suite_page(sv: SuiteView, runs_in_site: Mapping[tuple[str, int], str], trust: str, built_at: str,
               footer: str) -> str:
    r = sv.record
    title = f"Suite: {r.name if r else sv.folder_name}"
    when = f"when this site was built ({e(built_at)}), against {e(trust)}"
    if sv.error:
        state = (f'<div class="state bad" id="verification">{tag("FAILED", "bad")} The suite record did not verify '
                 f"{when}: {e(sv.error)}. Do not rely on it.</div>")
    elif sv.problems:
        state = (f'<div class="state bad" id="verification">{tag("FAILED", "bad")} Signed by {e(sv.signer)}, but '
                 f"runs it lists did not verify {when}:<ul>"
                 + "".join(f"<li>{e(p)}</li>" for p in sv.problems) + "</ul></div>")
    else:
        state = (f'<div class="state ok" id="verification">{tag("VERIFIED", "ok")} Verified {when}: signed by '
                 f"{e(sv.signer)}; every run it lists is its dossier's entry with the listed record digest and a valid "
                 "signature (each dossier as a whole: see its package page).</div>")
    crumbs: list[tuple[str, str | None]] = [("All packages", "../index.html"), (title, None)]
    if r is None:
        return page(title, state, crumbs=crumbs, footer=footer)
    gate_cls = "ok" if r.gate.verdict == "PASS" else "bad"
    body = [state,
            f'<div class="state {gate_cls}" id="suite-gate">{tag(f"GATE {r.gate.verdict}", gate_cls)} {e(r.gate.rule)}'
            + "".join(f"<br>note: {e(n)}" for n in r.gate.notes) + "</div>",
            kv([("Suite id", r.suite_id), ("Description", r.description or ""),
                 ("Suite file", f"{r.suite_file.name} (sha256 {r.suite_file.sha256})"),
                 ("Started / finished (UTC)", f"{r.started_at} / {r.finished_at} ({r.duration_s:.1f} s)"),
                 ("Parallel pairs", str(r.jobs)), ("Resumed", f"{len(r.resumes)} times"),
                 ("Harness", r.harness.version)]),
            '<h2 id="matrix">Packages \u00d7 models</h2>', _matrix(r, runs_in_site), _plots(r)]
    if r.gate.criteria:
        body.append('<h2 id="criteria">Acceptance criteria</h2>')
        body.append(table(["criterion", "package", "model", "group", "threshold", "value", "95% CI", "n", "verdict"],
                          ([c.text, c.package, c.model, c.group, f"{'≥' if c.at_least else '≤'} {pct(c.threshold)}",
                            pct(c.value), ci(c.ci_low, c.ci_high), str(c.n), verdict(c.verdict)]
                           for c in r.gate.criteria), ident="criteria-table", numeric=(5, 6, 7), raw=(8,)))
    if r.gate.baselines:
        body.append('<h2 id="baselines">Baselines</h2>')
        body.append(table(["package", "model", "metric", "group", "verdict", "required by the suite"],
                          ([b.package, b.model, b.metric, b.group, verdict(b.verdict), "yes" if b.required else "no"]
                           for b in r.gate.baselines), ident="suite-baselines", raw=(4,)))
    return page(title, "".join(body), crumbs=crumbs, footer=footer)


def index_section(views: Sequence[SuiteView]) -> str:
    if not views:
        return ""
    rows = []
    for sv in views:
        r = sv.record
        rows.append([f'<a href="{e(sv.file)}">{e(r.name if r else sv.folder_name)}</a>',
                     e(r.suite_id if r else sv.path.parent.name), e(r.finished_at if r else ""),
                     f"{len(r.packages)} \u00d7 {len(r.models)}" if r else "", verdict(str(r.gate.verdict)) if r else "",
                     state_tag(sv)])
    return ('<h2 id="suites">Suites</h2>'
            + table(["suite", "id", "finished (UTC)", "packages \u00d7 models", "gate", "record"], rows,
                    ident="suites-table", raw=range(6)))
