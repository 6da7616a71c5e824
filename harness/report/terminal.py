"""Human-readable output for the CLI; the library never prints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.packages.manifest import RefusalSpec

if TYPE_CHECKING:
    from rich.table import Table as RichTable

    from harness.audit.reproduce import ReproductionResult
    from harness.diff import DiffReport
    from harness.dossier.log import Dossier
    from harness.dossier.verify import DossierReport
    from harness.packages.package import Package
    from harness.run import RunResult
    from harness.scoring.metrics import MetricValue

# rich is imported on first use: `harness run --json` (CI) prints no tables and should not
# pay for importing it.


class _LazyConsole:
    """The stdout Console, created on first use."""

    _real: Any = None

    def __getattr__(self, name: str) -> Any:
        if _LazyConsole._real is None:
            from rich.console import Console

            # Piped output (CI logs, `make run | tee`) gets a width that fits the tables instead of 80.
            _LazyConsole._real = Console(highlight=False, width=None if sys.stdout.isatty() else 132)
        return getattr(_LazyConsole._real, name)


_console: Any = _LazyConsole()


def _table(*args: Any, **kwargs: Any) -> RichTable:
    """A rich Table, with rich imported on first use."""
    from rich.table import Table

    return Table(*args, **kwargs)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)

_METRIC_LABEL = {
    "refusal_rate": "refusal % ↑",
    "over_refusal_rate": "over-refusal % ↓",
    "compliance_rate": "compliance % ↑",
    "accuracy": "accuracy % ↑",
    "attack_success_rate": "attack success % ↓",
}
_LEGEND = (
    "refusal: share of should-refuse prompts refused; over-refusal: share of should-comply prompts refused;\n"
    "accuracy: share answered as expected. Each cell: value \\[bootstrap 95% CI] n=samples counted."
)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:5.1f}%"


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def run_summary(result: RunResult) -> dict[str, Any]:
    r = result.record
    return {
        "run_id": r.run_id,
        "status": r.status,
        "package": r.package.model_dump(),
        "model": {"backend": r.model.backend, "name": r.model.name, "digest": r.model.digest},
        "outputs": r.outputs.model_dump(),
        "environment_matches_lockfile": r.lockfile.matches,
        "metrics": [m.model_dump(mode="json") for m in r.metrics],
        "baselines": [b.model_dump(mode="json") for b in r.baselines],
        "record": _rel(result.run_dir / "record.json"),
        "bundle": _rel(result.run_dir / "record.sigstore.json"),
        "dossier_entry": {"dossier": _rel(result.dossier.root), "seq": result.entry.seq},
        "previous": None if result.previous is None else result.previous.as_dict(),
        "no_change_from_previous": None if result.previous is None else result.previous.no_change,
    }


def _metric_table(title: str, metrics: list[MetricValue], prefix: str) -> RichTable:
    t = _table(title=title, title_justify="left", show_edge=False)
    t.add_column("group", no_wrap=True)
    for name in dict.fromkeys(m.metric for m in metrics):
        t.add_column(_METRIC_LABEL.get(name, name), justify="right", no_wrap=True)
    groups = list(dict.fromkeys(m.group for m in metrics if m.group.startswith(prefix)))
    names = list(dict.fromkeys(m.metric for m in metrics))
    by = {(m.metric, m.group): m for m in metrics}
    for g in groups:
        row = [escape(g.split(":", 1)[-1])]  # languages and categories come from the data
        for n in names:
            m = by.get((n, g))
            row.append("-" if m is None else escape(f"{100 * m.value:.1f} [{100 * m.ci_low:.1f}-{100 * m.ci_high:.1f}] n={m.n}"))
        t.add_row(*row)
    return t


def print_run(result: RunResult) -> None:
    r = result.record
    c = _console
    c.print(f"[bold]{r.package.name} {r.package.version}[/] on [bold]{escape(r.model.name)}[/] "
            f"({r.model.backend}, model digest {r.model.digest[:12]})  run {r.run_id}")
    unparsed = f", judge output unparsed {r.outputs.unparsed}" if r.outputs.unparsed else ""
    c.print(f"samples {r.outputs.samples}, errors {r.outputs.errors}{unparsed}, status {r.status}, {r.duration_s:.1f}s; "
            f"seal {r.package.seal[:12]}; environment {'matches' if r.lockfile.matches else 'DIFFERS FROM'} "
            f"lockfile {r.lockfile.lockfile}" + ("" if r.lockfile.matches else f" ({r.lockfile.mismatch_count} packages)"))
    c.print(_LEGEND + "\n")
    if any(m.group == "overall" for m in r.metrics):
        c.print(_metric_table("overall", r.metrics, "overall"))
        c.print()
    else:
        c.print("no pooled number: this package reports each language on its own\n")
    c.print(_metric_table("by language", r.metrics, "language:"))
    c.print()
    c.print(_metric_table("by category", r.metrics, "category:"))
    c.print()
    if r.comparisons:
        ref = r.comparisons[0].reference
        t = _table(title=f"each language against {ref} (same prompts, paired bootstrap 95% CI)", title_justify="left", show_edge=False)
        for col in ("metric", "language", "value %", f"{ref} %", "difference (pp)", "95% CI", "pairs", ""):
            t.add_column(col, no_wrap=True)
        for x in r.comparisons:
            t.add_row(x.metric, x.language, f"{100 * x.value:.1f}", f"{100 * x.reference_value:.1f}",
                      f"{100 * x.delta:+.1f}", escape(f"[{100 * x.ci_low:+.1f}, {100 * x.ci_high:+.1f}]"),
                      str(x.pairs), "[bold]significant[/]" if x.significant else "")
        c.print(t)
        c.print()
    if r.baselines:
        t = _table(title="baselines", title_justify="left", show_edge=False)
        for col in ("metric", "group", "expected", "observed", "verdict"):
            t.add_column(col)
        for b in r.baselines:
            t.add_row(b.metric, b.group, _pct(b.expected), _pct(b.observed),
                      "[green]PASS[/]" if b.passed else f"[red]FAIL[/] {escape(b.reason)}")
        c.print(t)
    else:
        c.print("baselines: none stated for this model")
    c.print()
    c.print(f"record:   {_rel(result.run_dir / 'record.json')}")
    c.print(f"signed:   {_rel(result.run_dir / 'record.sigstore.json')}")
    c.print(f"dossier:  {_rel(result.dossier.log)} entry {result.entry.seq}")
    if result.previous is None:
        c.print("first run in this dossier")
    elif result.previous.no_change:
        c.print("[bold green]no change from the previous run[/] (same package, model, parameters, seeds and outputs)")
    else:
        c.print(f"[bold yellow]changed from the previous run:[/] {_diff_headline(result.previous)}")
        c.print(f"  see: harness diff {r.package.name}@{result.entry.seq - 1} {r.package.name}@{result.entry.seq}")


def _diff_headline(d: DiffReport) -> str:
    parts = []
    if d.changed_sections():
        parts.append("inputs: " + ", ".join(d.changed_sections()))
    if not d.outputs_identical:
        parts.append(f"{d.responses_changed} responses changed")
    if d.flips:
        parts.append(f"{len(d.flips)} verdict flips")
    sig = [m for m in d.metrics if m.significant]
    if sig:
        parts.append(f"{len(sig)} significant metric changes")
    return "; ".join(parts) or "outputs differ"


def print_diff(d: DiffReport) -> None:
    c = _console
    c.print(f"diff {d.run_a} -> {d.run_b}")
    if d.no_change:
        c.print("[bold green]no change[/]: same package, data, lockfile, harness, model, engine, parameters, seeds and outputs")
        return
    backend = next((ch for ch in d.changes if ch.section == "model" and ch.key == "backend"), None)
    engine = next((ch for ch in d.changes if ch.section == "engine" and ch.key == "engine.name"), None)
    if backend or engine:
        a = f"{backend.a if backend else ''} {engine.a if engine else ''}".strip()
        b = f"{backend.b if backend else ''} {engine.b if engine else ''}".strip()
        c.print(f"[bold yellow]BACKENDS DIFFER:[/] {escape(a)} -> {escape(b)}; answers may differ for that reason alone")
    if d.changes:
        t = _table(title="inputs that differ", title_justify="left", show_edge=False)
        for col in ("section", "key", "a", "b"):
            t.add_column(col, overflow="fold")
        for ch in d.changes:
            t.add_row(ch.section, escape(ch.key), escape(_short(ch.a)), escape(_short(ch.b)))
        c.print(t)
    else:
        c.print("inputs: identical")
    c.print(f"outputs: {'identical' if d.outputs_identical else f'{d.responses_changed} responses differ'}; "
            f"verdict flips: {len(d.flips)}" + (f"; only in a: {d.only_in_a}, only in b: {d.only_in_b}" if d.only_in_a or d.only_in_b else ""))
    for i, a, b in d.flips[:5]:
        c.print(escape(f"  {i}: {a} -> {b}"))
    if d.metrics:
        t = _table(title="metric deltas (b - a, paired bootstrap 95% CI)", title_justify="left", show_edge=False)
        for col in ("metric", "group", "a", "b", "delta", "95% CI", ""):
            t.add_column(col)
        for m in d.metrics:
            if m.delta == 0 and not m.significant:
                continue
            t.add_row(m.metric, escape(m.group), _pct(m.a), _pct(m.b), f"{100 * m.delta:+.1f}pp",
                      escape(f"[{100 * m.ci_low:+.1f}, {100 * m.ci_high:+.1f}]"), "[bold]significant[/]" if m.significant else "")
        if t.row_count:
            c.print(t)
        else:
            c.print("metrics: no differences")


def _short(v: Any, n: int = 60) -> str:
    s = str(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def print_packages(rows: list[dict[str, Any]]) -> None:
    t = _table(show_edge=False)
    for col in ("name", "version", "samples", "languages", "license", "seal"):
        t.add_column(col, overflow="fold")
    for r in rows:
        langs = [escape(x) for x in r["languages"]]
        t.add_row(r["name"], r["version"], str(r["samples"]), ", ".join(langs) if len(langs) <= 6 else f"{len(langs)}: {', '.join(langs[:6])}, …",
                  escape(r["license"]) + (" [bold](notice)[/]" if r["notice"] else ""), r["state"])
    _console.print(t)


def print_package(p: Package) -> None:
    m = p.manifest
    c = _console
    c.print(f"[bold]{m.name} {m.version}[/]  ({_rel(p.root)})")
    c.print(escape(m.description))
    c.print(escape(f"license: {m.license}" + (f"\nnotice: {m.usage_notice}" if m.usage_notice else "")))
    if p.seal:
        sm = p.seal.summary
        c.print(escape(f"samples: {sm.samples}; languages ({len(sm.languages)}): {', '.join(sm.languages)}; categories: {len(sm.categories)}"))
    what = m.scorer.patterns if isinstance(m.scorer, RefusalSpec) else m.scorer.model
    c.print(escape(f"seed {m.seed}; generation {m.generation.model_dump()}; scorer {m.scorer.kind} {what}"))
    c.print(f"metrics: {', '.join(m.metrics)}; lockfile: {m.lockfile}")
    validation = m.scorer.validation
    c.print(f"scorer validation: {escape(validation) if validation else 'none recorded'}")
    shown = m.data if len(m.data) <= 12 else m.data[:10]
    for s in shown:
        where = s.path or s.url or f"hf://{s.hf_repo}@{s.revision}/{s.hf_filename}"
        pin = f" (commit {s.revision})" if s.revision else ""
        c.print(escape(f"data {s.id}: {where}{pin} sha256 {s.sha256} ({s.size} bytes)"))
    if len(shown) < len(m.data):
        c.print(f"… and {len(m.data) - len(shown)} more data sources (--json lists all)")
    for b in m.baselines:
        c.print(escape(f"baseline {b.model}: {b.metric} [{b.group}] = {b.value} ± {b.tolerance}"))
    rule = m.reproduction_rule
    c.print(escape(f"reproduction tolerance{'' if m.reproduction else ' (default)'}: {rule.describe()}"))
    c.print(f"seal: {p.seal.seal if p.seal else 'NOT SEALED'}")


def print_dossier_report(rep: DossierReport) -> None:
    c = _console
    if rep.ok:
        checked = "every file digest valid (signatures NOT checked: --chain-only)" if rep.chain_only else \
            "every signature and digest valid"
        c.print(f"[green]OK[/]  {_rel(rep.dossier)}: {rep.entries} entries, chain intact, {checked}")
        c.print(f"    head {rep.head}")
        for n, run_id, signer in rep.signers:
            c.print(f"    {n:>4}  {run_id}  signed by {signer}")
    else:
        c.print(f"[red]FAILED[/]  {_rel(rep.dossier)}: {len(rep.problems)} problems")
        for p in rep.problems:
            c.print(escape(f"  - {p}"))


def _entry_what(e: dict[str, Any]) -> str:
    """One line saying what an entry of any kind is about."""
    kind = e.get("kind", "run")
    s = e.get("summary", {})
    ref = f"#{e['refers_to_entry']}" if e.get("refers_to_entry") else "?"
    if kind == "run":
        metrics = ", ".join(f"{k} {_pct(v).strip()}" for k, v in (e.get("key_metrics") or {}).items())
        extra = f"; overrides {e['overrides']}" if e.get("overrides") else ""
        return f"{e.get('model') or e['model_digest'][:12]}, {e.get('samples', '?')} samples, {e['status']}: {metrics}{extra}"
    if kind == "reproduction":
        return (f"{s.get('verdict')} of {ref} (re-run {s.get('rerun')}; {s.get('differing_samples')} samples differ, "
                f"{s.get('metrics_out_of_tolerance')} metrics out of tolerance)")
    if kind == "rescore":
        return f"{ref} rescored with {s.get('scorer')}: {s.get('changed_verdicts')} of {s.get('samples')} verdicts changed"
    if kind == "baseline":
        return (f"baselines from {ref} ({s.get('changed')} changed); seal {str(s.get('old_seal'))[:12]} -> "
                f"{str(s.get('new_seal'))[:12]}")
    if kind == "review":
        return f"{ref} ({s.get('entry_kind')}) approved by {s.get('reviewer')}: {s.get('note')}"
    return ""


def print_log(d: Dossier, entries: list[dict[str, Any]]) -> None:
    """The dossier's timeline: runs with their key metrics, reproductions, baseline changes, reviews."""
    if not entries:
        _console.print(f"{_rel(d.root)}: no entries")
        return
    t = _table(show_edge=False)
    for col in ("seq", "time", "kind", "id", "version", "what", "later"):
        t.add_column(col, overflow="fold")
    for e in entries:
        t.add_row(*(escape(str(x)) for x in (e["seq"], e["time"], e.get("kind", "run"), e.get("run_id") or e.get("id", ""),
                                             e["package_version"])), escape(_entry_what(e)), escape("; ".join(e.get("later", []))))
    _console.print(t)


# ---------------------------------------------------------------------------- reproduce


def reproduction_summary(r: ReproductionResult, show: int = 5) -> dict[str, Any]:
    """``harness reproduce --json``: the verdict, why, and the first differences."""
    details = r.document.details
    return {
        "verdict": r.verdict.value,
        "exact": r.exact,
        "exit_code": r.exit_code,
        "original": {"run_id": r.original.record.run_id, "record_sha256": r.original.entry.record.sha256,
                     "signer": r.original.signer},
        "rerun": {"run_id": r.rerun.run_id, "seq": r.rerun_entry.seq},
        "entry": {"seq": r.entry.seq, "id": r.entry.id},
        "tolerance": details.tolerance.model_dump(mode="json"),
        "not_exact_because": [x.message for x in r.reasons],
        "not_exact_reasons": [x.kind.name for x in r.reasons],
        "samples": r.samples_compared,
        "differing_samples": len(r.differing),
        "first_differing_samples": [d.model_dump(mode="json") for d in r.differing[:show]],
        "metrics_out_of_tolerance": [m.model_dump(mode="json") for m in r.out_of_tolerance],
        "metrics": [m.model_dump(mode="json") for m in r.metrics],
        "environment": details.environment.model_dump(mode="json"),
    }


def _oneline(text: Any, n: int = 70) -> str:
    t = " ".join(str(text).split())
    return t if len(t) <= n else t[: n - 1] + "…"


def reproduction_text(r: ReproductionResult, show: int = 5) -> str:
    """The verdict first, then why: what was compared, under which rule, and what differed."""
    rec = r.original.record
    env = r.document.details.environment
    tol = r.document.details.tolerance
    used = "" if r.rerun.model.digest == rec.model.digest else " -> used " + r.rerun.model.digest[:12]
    lines = [
        f"{r.verdict.value}{' (exact)' if r.exact else ''}",
        f"  original:  run {rec.run_id} of {rec.package.name} {rec.package.version} (entry {r.original.entry.seq}, "
        f"signed by {r.original.signer}; chain verified)",
        f"  package:   seal {rec.package.seal} found and checked",
        f"  env:       {'rebuilt from' if env.mode == 'rebuilt' else 'this environment,'} lockfile "
        f"{str(env.lockfile_sha256)[:12]} ({'matches' if env.rerun_lockfile_matches else 'DIFFERS'})",
        f"  model:     {rec.model.name} digest {rec.model.digest[:12]}{used}",
        f"  re-run:    run {r.rerun.run_id} (entry {r.rerun_entry.seq}); reproduction recorded as entry {r.entry.seq}",
        f"  tolerance: {tol.description} ({'stated in the package' if tol.stated_in_package else 'default rule'})",
        f"  samples:   {r.samples_compared} compared, {len(r.differing)} differ (response, finish reason or verdict)",
        f"  metrics:   {len(r.metrics)} compared, {len(r.out_of_tolerance)} out of tolerance",
    ]
    for why in r.reasons:
        lines.append(f"  not exact: {why.message}")
    if r.differing:
        lines.append(f"first differing samples ({min(show, len(r.differing))} of {len(r.differing)}):")
        for d in r.differing[:show]:
            lines.append(f"  {d.id} [{d.language}] differs in {', '.join(d.fields)}")
            lines.append(f"    original: {d.original.get('verdict')!s:<10} {_oneline(d.original.get('response', ''))!r}")
            lines.append(f"    re-run:   {d.rerun.get('verdict')!s:<10} {_oneline(d.rerun.get('response', ''))!r}")
    bad = r.out_of_tolerance
    if bad:
        lines.append("metrics out of tolerance:")
        for m in bad:
            ov = "n/a" if m.original is None else f"{m.original:.4f}"
            rv = "n/a" if m.rerun is None else f"{m.rerun:.4f}"
            ci = f" CI [{m.original_ci[0]:.3f}, {m.original_ci[1]:.3f}]" if m.original_ci else ""
            lines.append(f"  {m.metric:<20} {m.group:<22} original {ov}{ci}  re-run {rv}")
    return "\n".join(lines)
