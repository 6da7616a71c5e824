"""``harness view``: build the static site, and serve it on loopback when asked.

Layout of ``DIR`` (every page one self-contained file; links are relative, so the folder
can be moved, archived or published as it is)::

    index.html                         packages, suites, claim reports; when and against whose trust
    p/<package>/index.html             the dossier: verification, metrics across runs, the latest entries
    p/<package>/timeline-<k>.html      older entries of the timeline (500 a page)
    p/<package>/run-<N>.html           run N: facts, gate verdicts, metrics, samples (page 1)
    p/<package>/run-<N>-samples-<k>.html   further sample pages of a large run
    p/<package>/diff-<A>-<B>.html      runs A and B: input changes, metric deltas, flipped samples
    suites/<id>.html                   a suite: the package x model matrix with gate verdicts
    claims/<name>/claim-report.html    the procurement reports found under claim-reports/

Each dossier is verified once, here, with the reader's trust; the diffs are
:func:`harness.diff.diff_runs` between consecutive runs (and the pairs asked for). The
folder is emptied first only when an earlier ``harness view`` made it (a marker file
says so); any other non-empty folder is refused, so no one's files are overwritten.
"""

from __future__ import annotations

import http.server
import json
import multiprocessing
import os
import shutil
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from harness._internal.clock import now_seconds
from harness._internal.version import __version__
from harness.audit.show import SampleView
from harness.diff import diff_runs
from harness.dossier.log import Dossier
from harness.dossier.refs import dossier_named, split_ref
from harness.errors import HarnessError
from harness.report.site import pages
from harness.report.site.html import ci, e, page, pct, tag, verdict
from harness.report.site.model import (
    PackageView,
    Prompts,
    RunInfo,
    load_package,
    outputs_lines,
    slug,
    trust_label,
)
from harness.report.site.review import review_section
from harness.report.site.samples import FLIPS_SHOWN, browser, diff_body
from harness.report.site.suites import SuiteView, find_suites, load_suite_view, suite_page
from harness.report.site.suites import index_section as suite_index
from harness.signing.policy import resolve_trust
from harness.signing.verify import Trusted

MARKER = ".harness-view"
CLAIM_HTML = "claim-report.html"
CLAIM_JSON = "claim-report.json"
CLAIM_HEAD = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"viewport\" "
              "content=\"width=device-width, initial-scale=1\">\n<meta http-equiv=\"Content-Security-Policy\" "
              "content=\"default-src 'none'; style-src 'unsafe-inline'\">")
"""How a procurement report written by ``harness claim check`` begins: a policy that lets
nothing run or load. Only files that begin so are copied into the site."""


@dataclass(frozen=True)
class ViewOptions:
    out: Path
    packages: tuple[str, ...] = ()
    """Package names; none: every dossier in ``dossiers_dir``."""
    dossiers_dir: Path | None = None
    trusted: Trusted | None = None
    """Whose signatures count (default: the user's trust policy or trust store)."""
    claims: Path | None = None
    """Folder of claim reports (default: ``./claim-reports`` when it exists)."""
    pairs: tuple[tuple[str, str], ...] = ()
    """Extra diffs: pairs of ``PACKAGE@N`` references of viewed packages."""
    package: str | Path | None = None
    archive: Path | None = None
    mirror: Path | None = None


@dataclass
class SiteResult:
    out: Path
    built_at: str
    packages: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    largest_page: tuple[int, str] = (0, "")
    claims: int = 0
    suites: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every dossier verified."""
        return all(p["verified"] for p in self.packages)

    def as_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "index": str(self.out / "index.html"), "built_at": self.built_at,
                "ok": self.ok, "packages": self.packages, "pages": self.pages,
                "largest_page": {"bytes": self.largest_page[0], "path": self.largest_page[1]},
                "claims": self.claims, "suites": self.suites, "seconds": round(self.seconds, 3)}


class _Writer:
    """Writes pages under the site folder and keeps the figures (count, largest page)."""

    def __init__(self, out: Path, result: SiteResult) -> None:
        self.out, self.result = out, result

    def write(self, rel: str, text: str) -> None:
        data = text.encode("utf-8")
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.result.pages += 1
        if len(data) > self.result.largest_page[0]:
            self.result.largest_page = (len(data), rel)


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise HarnessError(f"{out} exists and is not a folder", hint="choose another --out folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise HarnessError(f"{out} is not empty and was not made by `harness view`; nothing was written",
                               hint="choose a new or empty --out folder (an earlier site's folder is rebuilt)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by `harness view`; the folder is replaced when the site is built again\n")


def _all_dossiers(dossiers_dir: Path | None) -> list[str]:
    root = Dossier.for_package("x", dossiers_dir).root.parent
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "log.jsonl").is_file())


def build_site(opts: ViewOptions) -> SiteResult:
    """Verify the dossiers, render every page into ``opts.out``; the figures in the result."""
    start = time.perf_counter()
    names = list(opts.packages) or _all_dossiers(opts.dossiers_dir)
    for name in opts.packages:
        dossier_named(name, opts.dossiers_dir, what="dossier")  # an unknown name is bad input, with a suggestion
    trusted = opts.trusted if opts.trusted is not None else resolve_trust()
    trust = trust_label(trusted)
    result = SiteResult(out=opts.out, built_at=now_seconds())
    footer = (f"Built {e(result.built_at)} by llm-safety-harness {e(__version__)}, verified against {e(trust)}. "
              "A snapshot: states are as of that time; build the site again (<code>harness view</code>) to "
              "check again.")
    for a, b in opts.pairs:
        if split_ref(a)[0] not in names or split_ref(b)[0] != split_ref(a)[0]:
            raise HarnessError(f"--diff {a} {b}: both runs must be of one package shown in the site",
                               hint=f"view that package too (`harness view {split_ref(a)[0]} ...`)")
    _prepare(opts.out)
    w = _Writer(opts.out, result)
    prompts = Prompts(opts.package, opts.archive, opts.mirror)
    views = []
    for name in names:
        pv = load_package(name, opts.dossiers_dir, trusted)
        pairs = [(a, b) for a, b in opts.pairs if split_ref(a)[0] == name]
        _write_package(w, pv, trust, footer, prompts, pairs)
        views.append(pv)
        latest = pv.runs[-1] if pv.runs else None
        result.packages.append({"name": name, "verified": pv.ok, "entries": len(pv.entries), "runs": len(pv.runs),
                                "problems": len(pv.report.problems) if pv.report else 1,
                                "latest_run": latest.entry.run_id if latest else None,
                                "page": f"p/{pv.slug}/index.html"})
    suites = _suites(w, opts, names, views, trusted, trust, result.built_at, footer)
    result.suites = len(suites)
    claims = _claims(w, opts.claims)
    result.claims = len(claims)
    w.write("index.html", _index(views, claims, trust, footer, suite_index(suites)))
    result.seconds = time.perf_counter() - start
    return result


PARALLEL_MIN_RUNS = 64
"""From this many runs on, run and diff pages are rendered by worker processes (one per
usable core, up to 8), each taking a contiguous slice of the runs: verifying, reading and
rendering a run is independent of every other run except the one before it (its diff)."""


@dataclass
class _RunPages:
    """What rendering the pages of a package's runs needs; shared with forked workers."""

    pv: PackageView
    runs: list[RunInfo]
    diffs: dict[int, str]
    trust: str
    footer: str
    prompts: Prompts
    base: str

    def render(self, start: int, end: int, w: _Writer) -> None:
        """Run pages of ``runs[start:end]``, and the diff page of each with the run before it."""
        runs, base = self.runs, self.base
        prev_samples = {s.id: s for s in self.prompts.samples(runs[start - 1])[0]} if start > 0 else {}
        for i in range(start, end):
            info = runs[i]
            samples, where = self.prompts.samples(info)
            br = browser(samples, where, partial(pages.run_file, info.seq))
            current = {s.id: s for s in samples}
            prev = runs[i - 1] if i > 0 else None
            if prev is not None:
                w.write(f"{base}/{self.diffs[info.seq]}", _diff_page(self.pv, prev, info, prev_samples, current,
                                                                     self.footer))
            nxt = runs[i + 1].seq if i + 1 < len(runs) else None
            for k, html_page in enumerate(pages.run_pages(self.pv, info, br, trust=self.trust,
                                                          prev_seq=prev.seq if prev else None, next_seq=nxt,
                                                          diff_href=self.diffs.get(info.seq), footer=self.footer,
                                                          review=review_section(self.pv, info, samples,
                                                                                outputs_lines(info)))):
                w.write(f"{base}/{pages.run_file(info.seq, k)}", html_page)
            prev_samples = current


_JOB: tuple[_RunPages, Path] | None = None
"""The job of the forked workers (inherited, never pickled)."""


def _render_slice(bounds: tuple[int, int]) -> tuple[int, tuple[int, str]]:
    assert _JOB is not None
    job, out = _JOB
    part = SiteResult(out=out, built_at="")
    job.render(bounds[0], bounds[1], _Writer(out, part))
    return part.pages, part.largest_page


def _workers(runs: int) -> int:
    if runs < PARALLEL_MIN_RUNS or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 8, runs // 32))


def _write_runs(w: _Writer, job: _RunPages) -> None:
    n = len(job.runs)
    workers = _workers(n)
    if workers == 1:
        job.render(0, n, w)
        return
    global _JOB
    for info in job.runs:  # each package's prompts are found once, before the workers fork
        if info.record is not None:
            job.prompts.texts(info.record)
    step = -(-n // workers)
    _JOB = (job, w.out)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for count, largest in pool.map(_render_slice, [(a, min(a + step, n)) for a in range(0, n, step)]):
                w.result.pages += count
                if largest[0] > w.result.largest_page[0]:
                    w.result.largest_page = largest
    finally:
        _JOB = None


def _write_package(w: _Writer, pv: PackageView, trust: str, footer: str, prompts: Prompts,
                   pairs: Sequence[tuple[str, str]]) -> None:
    base = f"p/{pv.slug}"
    runs = [r for r in pv.runs if r.record is not None]
    diffs = {b.seq: pages.diff_file(a.seq, b.seq) for a, b in zip(runs, runs[1:], strict=False)}
    _write_runs(w, _RunPages(pv, runs, diffs, trust, footer, prompts, base))
    chosen = []
    for a, b in pairs:
        ra, rb = (_pick(pv, ref) for ref in (a, b))
        name = pages.diff_file(ra.seq, rb.seq)
        if diffs.get(rb.seq) != name:
            sa = {s.id: s for s in prompts.samples(ra)[0]}
            sb = {s.id: s for s in prompts.samples(rb)[0]}
            w.write(f"{base}/{name}", _diff_page(pv, ra, rb, sa, sb, footer))
        chosen.append((f"run #{ra.seq} against run #{rb.seq}", name))
    w.write(f"{base}/index.html", pages.package_page(pv, trust=trust, diffs=diffs, pairs=chosen, footer=footer))
    for name, part in pages.timeline_files(pv)[:-1]:
        w.write(f"{base}/{name}", pages.timeline_page(pv, name, part, diffs=diffs, footer=footer))


def _pick(pv: PackageView, ref: str) -> RunInfo:
    entry = pv.dossier.resolve(split_ref(ref)[1])
    info = pv.run(entry.seq)
    if info is None or info.record is None:
        raise HarnessError(f"{ref}: the run's record could not be read", hint="see the package page")
    return info


def _diff_page(pv: PackageView, a: RunInfo, b: RunInfo, sa: dict[str, SampleView], sb: dict[str, SampleView],
               footer: str) -> str:
    assert a.record is not None and b.record is not None
    d = diff_runs(a.record, b.record, a.outputs, b.outputs)
    flips = [(sa[i], sb[i]) for i, _, _ in d.flips[:FLIPS_SHOWN] if i in sa and i in sb]
    la, lb = f"run #{a.seq}", f"run #{b.seq}"
    states = "".join(f"<li>{e(label)} (<a href=\"{e(pages.run_file(x.seq))}\">{e(x.entry.run_id)}</a>): "
                     f"{pages.state_cell(pv.states[x.seq])}</li>" for label, x in ((la, a), (lb, b)))
    body = f"<ul>{states}</ul>" + diff_body(d, flips, la, lb, len(d.flips))
    return page(f"{pv.name}: run #{a.seq} against run #{b.seq}", body, script=bool(flips), footer=footer,
                crumbs=[("All packages", "../index.html"), (pv.name, "index.html"), (f"diff #{a.seq}\u2013#{b.seq}", None)])


def _suites(w: _Writer, opts: ViewOptions, names: Sequence[str], views: Sequence[PackageView], trusted: Trusted,
            trust: str, built_at: str, footer: str) -> list[SuiteView]:
    """A page per suite record that involves a package of the site (every one when no package was named)."""
    dossiers = Dossier.for_package("x", opts.dossiers_dir).root.parent
    in_site = {(pv.name, r.seq): f"p/{pv.slug}/{pages.run_file(r.seq)}" for pv in views for r in pv.runs
               if r.record is not None}
    out = []
    for path in find_suites(dossiers):
        sv = load_suite_view(path, dossiers, trusted)
        if opts.packages and sv.record is not None and not {r.package for r in sv.record.runs} & set(names):
            continue
        w.write(sv.file, suite_page(sv, in_site, trust, built_at, footer))
        out.append(sv)
    return out


def _claims(w: _Writer, folder: Path | None) -> list[dict[str, Any]]:
    """Copy the procurement reports under ``folder`` into the site; what the index lists of each."""
    folder = folder if folder is not None else (Path("claim-reports") if Path("claim-reports").is_dir() else None)
    if folder is None or not folder.is_dir():
        return []
    out = []
    for report in sorted(folder.rglob(CLAIM_HTML)):
        if report.is_symlink() or not report.is_file():
            continue
        raw = report.read_bytes()
        name = str(report.parent.relative_to(folder)) if report.parent != folder else folder.name
        row: dict[str, Any] = {"name": name, "href": None, "verdict": None, "claim": ""}
        if not raw.startswith(CLAIM_HEAD.encode()):
            row["skipped"] = "not a report written by `harness claim check` (it does not forbid scripts); not copied"
            out.append(row)
            continue
        rel = f"claims/{slug(name.replace('/', '_'))}/{CLAIM_HTML}"
        w.write(rel, raw.decode("utf-8", "replace"))
        row["href"] = rel
        try:
            data = json.loads((report.parent / CLAIM_JSON).read_text(encoding="utf-8"))
            c = data.get("claim", {})
            row["verdict"] = str(data.get("verdict"))
            row["claim"] = (f"{c.get('vendor', {}).get('name')}: {c.get('model', {}).get('name')} on "
                            f"{c.get('package', {}).get('name')}, {c.get('metric', {}).get('name')} = "
                            f"{c.get('metric', {}).get('value')} ({c.get('metric', {}).get('group', 'overall')})")
            row["checked_at"] = str(data.get("checked_at"))
        except (OSError, ValueError, AttributeError):
            row["claim"] = "(no readable claim-report.json beside it)"
        out.append(row)
    return out


def _index(views: Sequence[PackageView], claims: Sequence[dict[str, Any]], trust: str, footer: str,
           suites: str) -> str:
    rows = []
    for pv in views:
        runs = [r for r in pv.runs if r.record is not None]
        latest = runs[-1] if runs else None
        r = latest.record if latest else None
        state = tag("VERIFIED", "ok") if pv.ok else tag(
            f"FAILED ({len(pv.report.problems) if pv.report else 1})", "bad")
        headline = "; ".join(f"{e(m.metric)} {pct(m.value)} {ci(m.ci_low, m.ci_high)}"
                             for m in (r.metrics if r else []) if m.group == "overall")
        word = pages.gate_word(r) if r is not None else None
        gate = verdict(word) if word else ""
        latest_cell = (f'<a href="p/{e(pv.slug)}/{e(pages.run_file(latest.seq))}">#{latest.seq}</a> '
                       f"{e(latest.entry.time)}<br>{e(r.model.name) if r else ''}" if latest else "none")
        rows.append(f'<tr><td><a href="p/{e(pv.slug)}/index.html">{e(pv.name)}</a></td><td>{state}</td>'
                    f'<td class="num">{len(pv.entries)}</td><td class="num">{len(pv.runs)}</td><td>{latest_cell}</td>'
                    f"<td>{headline}</td><td>{gate}</td></tr>")
    head = "".join(f'<th scope="col">{h}</th>' for h in ("package", "dossier", "entries", "runs", "latest run",
                                                            "latest overall metrics [95% CI]", "latest gate"))
    body = [f"<p>Every dossier was verified when this site was built, against {e(trust)}: hash chain, signed "
            "checkpoint, and every record's and event's signature and digests. Pages load nothing from the network.</p>",
            '<h2 id="packages">Packages</h2>',
            f'<table id="packages-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            if rows else "<p>No dossiers found.</p>"]
    body.append(suites)
    body.append('<h2 id="claims">Claim reports</h2>')
    if claims:
        items = []
        for c in claims:
            link = f'<a href="{e(c["href"])}">{e(c["name"])}</a>' if c["href"] else e(c["name"])
            extra = f" <em>{e(c['skipped'])}</em>" if c.get("skipped") else ""
            items.append(f"<li>{link}: {verdict(c['verdict']) if c['verdict'] else ''} {e(c['claim'])}{extra}</li>")
        body.append(f'<ul id="claims-list">{"".join(items)}</ul>')
    else:
        body.append("<p>None found (reports of <code>harness claim check</code> under <code>claim-reports/</code>, "
                    "or the folder given with <code>--claims</code>).</p>")
    return page("Safety benchmark results", "".join(body), footer=footer)


def start_server(out: Path, port: int = 0) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``out`` on 127.0.0.1 (a free port unless ``port``); the caller stops it (``shutdown``)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), partial(Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, name="harness-view", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


__all__ = ["ViewOptions", "SiteResult", "build_site", "start_server"]
