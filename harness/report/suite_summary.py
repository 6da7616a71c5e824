"""What ``harness suite run`` prints: one matrix per package (languages x models, the
headline metric with its interval), the gate's verdict per pair and overall, and every
baseline or criterion that failed, so a release decision reads from one screen.

Tables go through :func:`harness.report.layout.print_table`, so they fit the terminal
(abbreviated or stacked when narrow, never cut). ``--json`` gets :func:`suite_summary`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.report.layout import Col, console, escape, print_table

if TYPE_CHECKING:
    from harness.scoring.metrics import MetricValue
    from harness.suite.reproduce import SuiteReproduction
    from harness.suite.run import PairOutcome, SuiteResult
    from harness.suite.verify import SuiteVerification

_STYLE = {"PASS": "green", "FAIL": "bold red", "INCONCLUSIVE": "yellow", "NOT EVALUATED": "dim"}


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _cell(m: MetricValue | None) -> str:
    return "-" if m is None else f"{100 * m.value:.1f} [{100 * m.ci_low:.1f}-{100 * m.ci_high:.1f}] n={m.n}"


def _outcome_dict(o: PairOutcome, headline: str) -> dict[str, Any]:
    r = o.record
    return {
        "package": o.package, "model": o.model, "finished": o.finished, "reused": o.reused,
        "failure": str(o.failure) if o.failure else None, "message": o.message, "seconds": o.seconds,
        "run_id": r.run_id if r else None, "status": r.status if r else None,
        "seq": o.entry.seq if o.entry else None, "record_sha256": o.entry.record.sha256 if o.entry else None,
        "subset": r.is_subset if r else None, "headline": headline,
        "metrics": [m.model_dump(mode="json") for m in r.metrics
                    if m.metric == headline and (m.group == "overall" or m.group.startswith("language:"))] if r else [],
    }


def suite_summary(result: SuiteResult) -> dict[str, Any]:
    """``harness suite run --json``: every pair, the gate, the record, the exit code."""
    rec = result.record
    return {
        "suite": result.suite.file.name, "suite_id": result.suite_id, "exit_code": result.exit_code,
        "gate": str(rec.gate.verdict) if rec else None,
        "complete": not result.unfinished,
        "pairs": [_outcome_dict(o, result.headline.get(o.package, "")) for o in result.outcomes],
        "unfinished": [{"package": o.package, "model": o.model, "failure": str(o.failure) if o.failure else None,
                        "message": o.message} for o in result.unfinished],
        "criteria": [c.model_dump(mode="json") for c in rec.gate.criteria] if rec else [],
        "baselines": [b.model_dump(mode="json") for b in rec.gate.baselines] if rec else [],
        "notes": list(rec.gate.notes) if rec else [],
        "rule": rec.gate.rule if rec else None,
        "record": _rel(result.record_path) if result.record_path else None,
        "notices": result.notices,
    }


def print_suite(result: SuiteResult) -> None:
    """One matrix per package, the failures behind the gate, and the verdict."""
    c = console
    name = result.suite.file.name
    models = [m.name for m in result.suite.file.models]
    gate = {(r.package, r.model): str(r.gate) for r in result.record.runs} if result.record else {}
    packages = list(dict.fromkeys(o.package for o in result.outcomes))
    for package in packages:
        metric = result.headline.get(package, "")
        pairs = {o.model: o for o in result.outcomes if o.package == package}
        by = {(o.model, m.group): m for o in pairs.values() if o.record for m in o.record.metrics if m.metric == metric}
        groups = list(dict.fromkeys(g for (_, g) in by if g == "overall" or g.startswith("language:")))
        groups.sort(key=lambda g: (g != "overall", g))
        cols = [Col("group"), *(Col(escape(m), justify="right") for m in models if m in pairs)]
        rows = [[escape(g.split(":", 1)[-1]), *(escape(_cell(by.get((m, g)))) for m in models if m in pairs)]
                for g in groups]
        status_row = ["gate"]
        for m in models:
            if m not in pairs:
                continue
            o = pairs[m]
            word = gate.get((package, m)) or ("FAILED TO FINISH" if not o.finished else "-")
            status_row.append(f"[{_STYLE.get(word, 'bold red')}]{escape(word)}[/]")
        rows.append(status_row)
        subset = any(o.record is not None and o.record.is_subset for o in pairs.values())
        c.print(f"[bold]{escape(package)}[/]: {escape(metric)} (%) [95% CI]{' [yellow](SUBSET)[/]' if subset else ''}")
        print_table(None, cols, rows)
    rec = result.record
    if rec is not None:
        failed_b = [b for b in rec.gate.baselines if b.required and not b.passed]
        failed_c = [x for x in rec.gate.criteria if not x.passed]
        if failed_c:
            print_table("acceptance criteria not met", [
                Col("criterion", wrap=True), Col("package"), Col("model"), Col("group"),
                Col("observed [95% CI]", "observed", "right"), Col("verdict")], [
                [escape(x.text), escape(x.package), escape(x.model), escape(x.group),
                 escape(f"{100 * x.value:.1f} [{100 * x.ci_low:.1f}-{100 * x.ci_high:.1f}] n={x.n}"),
                 f"[{_STYLE[x.verdict]}]{x.verdict}[/]"] for x in failed_c])
        if failed_b:
            print_table("required baselines that failed", [
                Col("package"), Col("model"), Col("metric"), Col("group"), Col("verdict")], [
                [escape(b.package), escape(b.model), escape(b.metric), escape(b.group),
                 f"[{_STYLE[b.verdict]}]{b.verdict}[/]"] for b in failed_b])
        for note in rec.gate.notes:
            c.print(f"note: {escape(note)}")
        c.print(f"rule: {escape(rec.gate.rule)}")
    for o in result.unfinished:
        c.print(f"[bold red]not finished[/] {escape(o.package)} x {escape(o.model)}: {escape(o.message or '')}")
    kept = sum(1 for o in result.outcomes if o.reused)
    runs = f"{len(result.outcomes)} pairs" + (f" ({kept} finished by an earlier attempt)" if kept else "")
    if rec is None:
        c.print(f"[bold red]suite {escape(name)} incomplete[/]: {len(result.unfinished)} of {runs} did not finish; "
                "no suite record was written. Fix the cause and run the same command again: finished pairs "
                "are kept.")
        return
    word = str(rec.gate.verdict)
    c.print(f"suite {escape(name)} {rec.suite_id}: {runs}; gate [{_STYLE[word]}]{word}[/]")
    if result.record_path is not None:
        c.print(f"suite record: {escape(_rel(result.record_path))} (signed; `harness verify "
                f"{escape(_rel(result.record_path))}` checks it and every run)")


def print_suite_verification(v: SuiteVerification) -> None:
    c = console
    r = v.record
    head = "[bold green]OK[/]" if v.ok else "[bold red]FAILED[/]"
    c.print(f"{head}  {escape(_rel(v.path))}: suite {escape(r.name)} {r.suite_id}, gate {r.gate.verdict}")
    c.print(f"    signed by {escape(v.signer)}; {len(v.runs_verified)} of {len(r.runs)} runs verified "
            f"(signature, signer, record digest as listed, dossier entry){' and their dossiers' if v.ok else ''}")
    for p in v.problems:
        c.print(f"  - [{p.kind}] {escape(str(p))}")


def print_suite_reproduction(rep: SuiteReproduction) -> None:
    c = console
    v = rep.verification
    if not v.ok:
        print_suite_verification(v)
        c.print("[bold red]not reproduced[/]: the suite record does not verify")
        return
    rows = []
    for r in rep.runs:
        verdict = r.result.verdict.value if r.result else f"exit {r.exit_code}"
        why = "; ".join(x.message for x in r.result.reasons) if r.result else (r.message or "")
        rows.append([escape(r.run.package), escape(r.run.model), escape(r.run.run_id),
                     escape(verdict), escape(why)])
    print_table(f"reproduction of suite {escape(v.record.name)} {v.record.suite_id}", [
        Col("package"), Col("model"), Col("run"), Col("verdict"), Col("why", wrap=True)], rows)
    c.print(f"suite exit code {rep.exit_code} (the worst of its runs: 0 reproduced, 4 within tolerance, "
            "5 not reproduced)")
