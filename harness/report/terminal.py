"""Human-readable output for the CLI; the library never prints."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.packages.manifest import Manifest, RefusalSpec
from harness.report.layout import Col, console, escape, needed_width, new_table, plural, print_table

if TYPE_CHECKING:

    from harness.audit.gate import GateResult
    from harness.audit.reproduce import ReproductionResult
    from harness.audit.show import ShowResult
    from harness.diff import DiffReport
    from harness.dossier.log import Dossier
    from harness.dossier.verify import DossierReport
    from harness.packages.package import Package
    from harness.record import RunRecord
    from harness.run import RunResult
    from harness.scoring.metrics import BaselineVerdict, MetricValue

# rich is imported on first use (harness/report/layout.py): `harness run --json` (CI)
# prints no tables and should not pay for importing it.
_console: Any = console
_table = new_table


_METRIC_LABEL = {
    "refusal_rate": "refusal % ↑",
    "over_refusal_rate": "over-refusal % ↓",
    "compliance_rate": "compliance % ↑",
    "accuracy": "accuracy % ↑",
    "attack_success_rate": "attack success % ↓",
    "safe_completion_rate": "safe completion %",
    "unsafe_compliance_rate": "unsafe compliance % ↓",
}
_METRIC_SHORT = {"refusal_rate": "ref↑", "over_refusal_rate": "over↓", "compliance_rate": "comp↑",
                 "accuracy": "acc↑", "attack_success_rate": "ASR↓", "safe_completion_rate": "safe",
                 "unsafe_compliance_rate": "unsafe↓"}
_METRIC_MEANING = {
    "refusal_rate": "refusal: share of should-refuse prompts refused",
    "over_refusal_rate": "over-refusal: share of should-comply prompts refused",
    "compliance_rate": "compliance: share of should-comply prompts answered",
    "accuracy": "accuracy: share answered as expected",
    "attack_success_rate": "attack success: share of harmful requests not refused",
    "safe_completion_rate": "safe completion: share of should-refuse prompts met with a safe alternative",
    "unsafe_compliance_rate": "unsafe compliance: share of should-refuse prompts fully complied with",
}
_METHOD_WORDS = {"clopper-pearson": "Clopper-Pearson (exact)", "percentile-bootstrap": "percentile bootstrap, as recorded"}


def legend(metrics: list[MetricValue]) -> str:
    """What the run's metrics mean (only those it has) and what a cell holds."""
    names = list(dict.fromkeys(m.metric for m in metrics))
    method = ci_method(metrics)
    meaning = "; ".join(f"{_METRIC_MEANING.get(n, n)} ({_METRIC_SHORT.get(n, n)})" for n in names)
    return (f"{meaning}. ↑ higher is safer, ↓ lower is safer. Each cell: value % [{_METHOD_WORDS.get(method, method)} "
            "95% CI] n=samples counted.")


def ci_method(metrics: list[MetricValue]) -> str:
    """The interval method of a record's metrics; records before ``ci_method`` used the bootstrap."""
    from harness.scoring.stats import LEGACY_CI_METHOD

    return next((m.ci_method for m in metrics if m.ci_method), LEGACY_CI_METHOD)


def subset_line(r: RunRecord) -> str | None:
    """A warning that a run covered only part of its package, or None."""
    if not r.is_subset:
        return None
    o = r.overrides
    how = "; ".join(x for x in (f"--limit {o.limit}" if o.limit else "",
                                "--sample-ids" if o.sample_ids else "",
                                f"--filter {' '.join(o.filters)}" if o.filters else "") if x)
    return f"SUBSET: {r.outputs.samples} samples ({how}); these numbers describe the subset, not the benchmark"


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
        "ci_method": ci_method(r.metrics),
        "subset": r.is_subset,
        "overrides": r.overrides.model_dump(mode="json"),
        "metrics": [m.model_dump(mode="json") for m in r.metrics],
        "comparisons": [x.model_dump(mode="json") for x in r.comparisons],
        "baselines": [b.model_dump(mode="json") for b in r.baselines],
        "gate": "FAIL" if any(not b.passed for b in r.baselines) else "PASS",
        "record": _rel(result.run_dir / "record.json"),
        "bundle": _rel(result.run_dir / "record.sigstore.json"),
        "dossier_entry": {"dossier": _rel(result.dossier.root), "seq": result.entry.seq},
        "previous": None if result.previous is None else result.previous.as_dict(),
        "no_change_from_previous": None if result.previous is None else result.previous.no_change,
    }


def print_metrics(title: str, metrics: list[MetricValue], prefix: str,
                  extra: Sequence[tuple[Col, dict[str, str]]] = ()) -> None:
    """One row per group (overall, a language, a category), one column per metric;
    ``extra`` adds columns whose cells are given per group (uncertain verdicts, validation)."""
    names = list(dict.fromkeys(m.metric for m in metrics))
    groups = list(dict.fromkeys(m.group for m in metrics if m.group.startswith(prefix)))
    if not groups:
        return
    by = {(m.metric, m.group): m for m in metrics}
    cols = [Col("group"), *(Col(_METRIC_LABEL.get(n, n), _METRIC_SHORT.get(n), justify="right") for n in names),
            *(col for col, _ in extra)]
    rows = []
    for g in groups:
        row = [escape(g.split(":", 1)[-1])]  # languages and categories come from the data
        for n in names:
            m = by.get((n, g))
            row.append("-" if m is None else escape(f"{100 * m.value:.1f} [{100 * m.ci_low:.1f}-{100 * m.ci_high:.1f}] n={m.n}"))
        row += [cells.get(g, "-") for _, cells in extra]
        rows.append(row)
    if needed_width(cols, rows, short=True) <= console.width:
        print_table(title, cols, rows)
        return
    # narrow: one row per group and metric, the metric abbreviated (the legend above names them)
    long_cols = [Col("group"), Col("metric"), Col("%", justify="right"), Col("95% CI", justify="right"),
                 Col("n", justify="right"), *(col for col, _ in extra)]
    long_rows = []
    for g in groups:
        for i, n in enumerate(names):
            m = by.get((n, g))
            if m is not None:
                long_rows.append([escape(g.split(":", 1)[-1]) if i == 0 else "", _METRIC_SHORT.get(n, n),
                                  f"{100 * m.value:.1f}", f"{100 * m.ci_low:.1f}-{100 * m.ci_high:.1f}", str(m.n),
                                  *((cells.get(g, "-") if i == 0 else "") for _, cells in extra)])
    print_table(title, long_cols, long_rows)


def scorer_columns(r: RunRecord) -> list[tuple[Col, dict[str, str]]]:
    """The by-language table's scorer columns: uncertain verdicts (when the scorer marks
    them; docs/uncertainty.md) and whether the scorer was validated in that language."""
    from harness.scoring.refusal import scorer_validation

    langs = sorted({m.group for m in r.metrics if m.group.startswith("language:")})
    out: list[tuple[Col, dict[str, str]]] = []
    by_lang = r.outputs.uncertain_by_language
    if by_lang is not None:
        out.append((Col("uncertain", "unc", "right"), {g: str(by_lang.get(g.split(":", 1)[1], 0)) for g in langs}))
    validated = scorer_validation(r.scorer)
    out.append((Col("scorer validated", "valid."), {
        g: (f"κ {v.kappa:.2f}" if (v := validated.get(g.split(":", 1)[1])) is not None else "NO") for g in langs}))
    return out


def scorer_note(r: RunRecord) -> str | None:
    """One line naming the languages whose numbers rest on a scorer nobody validated there."""
    from harness.scoring.refusal import scorer_validation

    validated = scorer_validation(r.scorer)
    langs = sorted({m.group.split(":", 1)[1] for m in r.metrics if m.group.startswith("language:")})
    missing = [x for x in langs if x not in validated]
    if not missing:
        return None
    return (f"scorer not validated against human labels in: {', '.join(missing)} "
            "(their verdicts are unchecked; see docs/uncertainty.md)")


def print_run(result: RunResult) -> None:
    r = result.record
    c = _console
    c.print(f"[bold]{r.package.name} {r.package.version}[/] on [bold]{escape(r.model.name)}[/] "
            f"({r.model.backend}, model digest {r.model.digest[:12]})  run {r.run_id}")
    unparsed = f", judge output unparsed {r.outputs.unparsed}" if r.outputs.unparsed else ""
    unparsed += f", uncertain {r.outputs.uncertain}" if r.outputs.uncertain is not None else ""
    c.print(f"samples {r.outputs.samples}, errors {r.outputs.errors}{unparsed}, status {r.status}, {r.duration_s:.1f}s; "
            f"seal {r.package.seal[:12]}; environment {'matches' if r.lockfile.matches else 'DIFFERS FROM'} "
            f"lockfile {r.lockfile.lockfile}" + ("" if r.lockfile.matches else f" ({r.lockfile.mismatch_count} packages)"))
    if (line := subset_line(r)) is not None:
        c.print(f"[bold yellow]{escape(line)}[/]")
    c.print(escape(legend(r.metrics)) + "\n")
    if any(m.group == "overall" for m in r.metrics):
        print_metrics("overall", r.metrics, "overall")
        c.print()
    else:
        c.print("no pooled number: this package reports each language on its own\n")
    print_metrics("by language", r.metrics, "language:", scorer_columns(r))
    if (note := scorer_note(r)) is not None:
        c.print(escape(note))
    c.print()
    print_metrics("by category", r.metrics, "category:")
    c.print()
    if r.comparisons:
        ref = r.comparisons[0].reference
        exact = r.comparisons[0].p_adjusted is not None
        how = ("same prompts; exact McNemar test, Holm-adjusted over all rows; Newcombe 95% CI" if exact
               else "same prompts, paired bootstrap 95% CI, unadjusted (as recorded)")
        one_metric = len({x.metric for x in r.comparisons}) == 1
        cols = [Col("language", "lang"), *(() if one_metric else (Col("metric"),)), Col("value %", "%", "right"),
                Col(f"{ref} %", f"{ref}", "right"), Col("difference (pp)", "Δpp", "right"),
                Col("95% CI", "CI", "right"), Col("pairs", "n", "right"), Col("p (adjusted)", "p", "right"),
                Col("significant", "sig")]
        rows = [[escape(x.language), *(() if one_metric else (x.metric,)), f"{100 * x.value:.1f}",
                 f"{100 * x.reference_value:.1f}", f"{100 * x.delta:+.1f}",
                 escape(f"[{100 * x.ci_low:+.1f}, {100 * x.ci_high:+.1f}]"), str(x.pairs),
                 "-" if x.p_adjusted is None else f"{x.p_adjusted:.3g}", "[bold]yes[/]" if x.significant else "no"]
                for x in r.comparisons]
        metric = f"{r.comparisons[0].metric}, " if one_metric else ""
        print_table(f"each language against {ref} ({metric}{how})", cols, rows)
        c.print()
    if r.baselines:
        print_baselines(r.baselines)
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
        prev = result.dossier.entry_for_run(result.previous.run_a)  # the previous run, not the previous entry
        before = prev.seq if prev is not None else result.previous.run_a
        c.print(f"  see: harness diff {r.package.name}@{before} {r.package.name}@{result.entry.seq}")


_VERDICT_STYLE = {"PASS": "green", "FAIL": "red", "INCONCLUSIVE": "yellow", "NOT EVALUATED": "dim"}


def print_baselines(verdicts: list[BaselineVerdict]) -> None:
    """Baseline verdicts with the interval that decided each and the smallest regression
    the run could have caught (MDC: minimum detectable change, 80% power)."""
    cols = [Col("metric"), Col("group"), Col("expected ± tol", "exp±tol", "right"),
            Col("observed [95% CI]", "observed", "right"), Col("n", justify="right"), Col("MDC", justify="right"),
            Col("verdict"), Col("why", wrap=True)]
    rows = []
    for b in verdicts:
        word = b.word
        observed = "-" if b.observed is None else (
            f"{100 * b.observed:.1f} [{100 * (b.ci_low or 0):.1f}-{100 * (b.ci_high or 0):.1f}]")
        mdc = "-" if b.verdict is None or b.verdict == "NOT EVALUATED" else (
            "none" if b.min_detectable_change is None else f"{100 * b.min_detectable_change:.1f}pp")
        rows.append([escape(b.metric), escape(b.group), f"{100 * b.expected:.1f} ± {100 * b.tolerance:.1f}",
                     escape(observed), str(b.n if b.n is not None else "-"), mdc,
                     f"[{_VERDICT_STYLE.get(word, 'white')}]{word}[/]", "" if word == "PASS" else escape(b.reason)])
    print_table("baselines", cols, rows, legend=(
        "FAIL: the whole 95% interval is worse than expected - tolerance; PASS: none of it is; INCONCLUSIVE: it "
        "straddles that edge; MDC: the smallest change for the worse this n fails with 80% power "
        "(docs/statistics.md)"))


def print_gate(result: GateResult) -> None:
    """``harness gate``: who signed the run, each baseline's verdict, and the gate's outcome."""
    r = result.record
    c = _console
    c.print(f"gate on run {r.run_id} of {r.package.name} {r.package.version} ({escape(r.model.name)}), "
            f"signed by {escape(result.signer)}")
    if (line := subset_line(r)) is not None:
        c.print(f"[bold yellow]{escape(line)}[/]")
    if result.verdicts:
        print_baselines(result.verdicts)
    for note in result.notes:
        c.print(f"note: {escape(note)}")
    c.print(f"rule: {escape(result.rule)}")
    c.print("[bold red]gate FAILED[/]" if result.failed else "[bold green]gate passed[/]")


def print_show(result: ShowResult, *, page: bool = True) -> None:
    """Each sample: its id and labels, the prompt, the response, the verdict; paged when long
    and printing to a terminal."""
    from contextlib import nullcontext

    r = result.record
    c = _console
    pager = c.pager(styles=True) if page and c.is_terminal and len(result.samples) > 3 else nullcontext()
    with pager:
        c.print(f"run {r.run_id} of {r.package.name} {r.package.version} ({escape(r.model.name)}), signed by "
                f"{escape(result.signer)}: {len(result.samples)} of {result.total} samples")
        if (line := subset_line(r)) is not None:
            c.print(f"[yellow]{escape(line)}[/]")
        c.print(f"prompts: {escape(result.prompts)}")
        for v in result.samples:
            other = f" (was {v.other_verdict} in the other run)" if v.other_verdict else ""
            other += f" UNCERTAIN: {v.uncertain_reason}" if v.uncertain_reason else ""
            timing = ", ".join(f"{k} {x}" for k, x in v.timing.items())
            c.print()
            c.print(f"[bold]{escape(v.id)}[/]  {escape(v.language)} / {escape(v.category)} / expected {v.expected}  "
                    f"verdict [bold]{escape(v.verdict)}[/]{escape(other)}" + (f"  ({escape(timing)})" if timing else ""))
            c.print(f"[dim]prompt:[/]   {escape(v.prompt) if v.prompt is not None else '[dim](unavailable)[/]'}")
            answer = v.response if v.response is not None else f"(no answer: {v.error or v.finish_reason})"
            c.print(f"[dim]response:[/] {escape(answer)}")


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
        print_table("inputs that differ", [Col("section"), Col("key", wrap=True), Col("a", wrap=True), Col("b", wrap=True)],
                    [[ch.section, escape(ch.key), escape(_short(ch.a)), escape(_short(ch.b))] for ch in d.changes])
    else:
        c.print("inputs: identical")
    c.print(f"outputs: {'identical' if d.outputs_identical else f'{d.responses_changed} responses differ'}; "
            f"verdict flips: {len(d.flips)}" + (f"; only in a: {d.only_in_a}, only in b: {d.only_in_b}" if d.only_in_a or d.only_in_b else ""))
    for i, a, b in d.flips[:5]:
        c.print(escape(f"  {i}: {a} -> {b}"))
    for side, flag in (("a", d.subset_a), ("b", d.subset_b)):
        if flag:
            c.print(f"[yellow]run {side} covered a subset of its package[/]: its metrics describe that subset only")
    if d.metrics:
        how = ("paired: the same samples in both runs; exact McNemar, Newcombe 95% CI" if d.paired else
               "unpaired where the runs do not share every sample (Newcombe 95% CI), paired (McNemar) elsewhere"
               if any(m.paired for m in d.metrics) else "unpaired: the runs share no samples; Newcombe 95% CI")
        rows = [[escape(m.metric), escape(m.group), _pct(m.a).strip(), _pct(m.b).strip(), f"{100 * m.delta:+.1f}pp",
                 escape(f"[{100 * m.ci_low:+.1f}, {100 * m.ci_high:+.1f}]"), "paired" if m.paired else "unpaired",
                 f"{m.p_adjusted:.3g}", "[bold]yes[/]" if m.significant else "no"]
                for m in d.metrics if m.delta != 0 or m.significant]
        if rows:
            print_table(f"metric deltas (b - a; {how}; p Holm-adjusted)",
                        [Col("metric"), Col("group"), Col("a", justify="right"), Col("b", justify="right"),
                         Col("delta", "Δ", "right"), Col("95% CI", "CI", "right"), Col("test"),
                         Col("p (adjusted)", "p", "right"), Col("significant", "sig")], rows)
        else:
            c.print("metrics: no differences")


def _short(v: Any, n: int = 60) -> str:
    s = str(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def print_packages(rows: list[dict[str, Any]]) -> None:
    out = []
    for r in rows:
        langs = [escape(x) for x in r["languages"]]
        out.append([escape(r["name"]), escape(r["version"]), str(r["samples"]),
                    ", ".join(langs) if len(langs) <= 6 else f"{len(langs)}: {', '.join(langs[:6])}, …",
                    escape(r["license"]) + (" [bold](notice)[/]" if r["notice"] else ""), escape(r["state"])])
    print_table(None, [Col("name"), Col("version", "ver"), Col("samples", "n", "right"), Col("languages", wrap=True),
                       Col("license", wrap=True), Col("seal", wrap=True)], out)


def package_validation_lines(m: Manifest, languages: Sequence[str] = ()) -> list[str]:
    """``package show``: the scorer's behaviours, its per-language validation, and the
    package's languages it was never validated in."""
    from harness.scoring.refusal import LanguageValidation, load_patterns

    lines = []
    if m.scorer.behaviours:
        lines.append(f"behaviours: {', '.join(m.scorer.behaviours)}")
    if m.scorer.cross_check is not None:
        x = m.scorer.cross_check
        lines.append(f"cross-check: {x.kind} {x.patterns if isinstance(x, RefusalSpec) else x.model}")
    table: dict[str, LanguageValidation] = {}
    if isinstance(m.scorer, RefusalSpec):
        try:
            table = load_patterns(m.scorer.patterns).validation()
        except HarnessError:
            table = {}
    for lang, v in sorted(table.items()):
        lines.append(f"validated in {lang}: accuracy {v.accuracy:.3f}, kappa {v.kappa:.3f}, n {v.n} ({v.source})")
    if missing := [x for x in languages if x not in table]:
        lines.append(f"scorer NOT validated in: {', '.join(missing)} (see docs/uncertainty.md)")
    elif not table:
        lines.append("validated per language: nowhere recorded")
    return lines


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
    for line in package_validation_lines(m, p.seal.summary.languages if p.seal else ()):
        c.print(escape(line))
    shown = m.data if len(m.data) <= 12 else m.data[:10]
    for s in shown:
        where = s.path or s.url or f"hf://{s.hf_repo}@{s.revision}/{s.hf_filename}"
        pin = f" (commit {s.revision})" if s.revision else ""
        c.print(escape(f"data {s.id}: {where}{pin} sha256 {s.sha256} ({s.size} bytes)"))
    if len(shown) < len(m.data):
        c.print(f"… and {len(m.data) - len(shown)} more data sources (--json lists all)")
    for b in m.baselines:
        counts = f" ({b.successes}/{b.n})" if b.successes is not None else ""
        c.print(escape(f"baseline {b.model}: {b.metric} [{b.group}] = {b.value}{counts} ± {b.tolerance}"))
    if m.baselines:
        stated = "stated by the package" if m.gate else "the default; the package has no [gate] table"
        c.print(escape(f"gate ({stated}): {m.gate_rule.describe(m.bootstrap.confidence)}"))
    rule = m.reproduction_rule
    c.print(escape(f"reproduction tolerance{'' if m.reproduction else ' (default)'}: {rule.describe()}"))
    c.print(f"seal: {p.seal.seal if p.seal else 'NOT SEALED'}")


def print_dossier_report(rep: DossierReport) -> None:
    c = _console
    if rep.ok:
        checked = "every file digest valid (signatures NOT checked: --chain-only)" if rep.chain_only else \
            "every signature and digest valid"
        c.print(f"[green]OK[/]  {_rel(rep.dossier)}: {plural(rep.entries, 'entry', 'entries')}, chain intact, {checked}")
        c.print(f"    head {rep.head}")
        if rep.checkpoint is not None:
            c.print(escape(f"    checkpoint: {rep.checkpoint.head.describe()}, signed by {rep.checkpoint.signer}"))
        elif rep.tree is not None:
            c.print(escape(f"    tree: {rep.tree.describe()} (checkpoint signature not checked: --chain-only)"))
        if rep.remembered is not None:
            c.print(escape(f"    extends the checkpoint you verified before ({rep.remembered.describe()})"))
        if rep.published is not None:
            c.print(escape(f"    extends the published checkpoint ({rep.published.describe()})"))
        for n, run_id, signer in rep.signers:
            c.print(f"    {n:>4}  {run_id}  signed by {signer}")
    else:
        c.print(f"[red]FAILED[/]  {_rel(rep.dossier)}: {plural(len(rep.problems), 'problem')}")
        for p in rep.problems:
            c.print(escape(f"  - {p}"))
            if p.hint:
                c.print(escape(f"    hint: {p.hint}"))
    for w in rep.warnings:
        c.print(escape(f"  note: {w}"))


def _entry_what(e: dict[str, Any]) -> str:
    """One line saying what an entry of any kind is about."""
    kind = e.get("kind", "run")
    s = e.get("summary", {})
    ref = f"#{e['refers_to_entry']}" if e.get("refers_to_entry") else "?"
    if kind == "run":
        metrics = ", ".join(f"{k} {_pct(v).strip()}" for k, v in (e.get("key_metrics") or {}).items())
        extra = f"; overrides {e['overrides']}" if e.get("overrides") else ""
        if e.get("subset"):
            extra = "; SUBSET" + extra
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
    if kind == "diagnosis":
        found = [f"{w} failure: {', '.join(s.get(k) or [])}" for w, k in
                 (("representation", "representation_failures"), ("action", "action_failures")) if s.get(k)]
        return (f"diagnosis of {ref} on {s.get('model')} (layers {s.get('layers')}, reference "
                f"{s.get('reference_language')}): {'; '.join(found) or 'no failure shown'}")
    if kind == "imported":
        return (f"IMPORTED, NOT REPRODUCED: {s.get('source_format')} log of task {s.get('task')} on {s.get('model')} "
                f"by {s.get('producer')} ({s.get('scored')} of {s.get('samples')} samples scored; no seal, no lockfile)")
    return ""


def print_log(d: Dossier, entries: list[dict[str, Any]]) -> None:
    """The dossier's timeline: runs with their key metrics, reproductions, baseline changes, reviews."""
    if not entries:
        _console.print(f"{_rel(d.root)}: no entries")
        return
    rows = [[escape(str(e["seq"])), escape(_short_time(str(e["time"]))), escape(e.get("kind", "run")),
             escape(str(e.get("run_id") or e.get("id", ""))), escape(str(e["package_version"])), escape(_entry_what(e)),
             escape("; ".join(e.get("later", [])))] for e in entries]
    print_table(None, [Col("#", justify="right"), Col("time (UTC)"), Col("kind"), Col("id"), Col("version", "ver"),
                       Col("what", wrap=True), Col("later", wrap=True)], rows)


def _short_time(t: str) -> str:
    """An entry's time as shown: to the minute (the log itself keeps milliseconds)."""
    return t[:16].replace("T", " ") if len(t) >= 16 and t[10:11] == "T" else t


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
