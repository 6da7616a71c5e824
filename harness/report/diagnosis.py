"""The text output of ``harness diagnose``: one compact row per language, and where the strongest separation is.

Every number comes from the signed diagnosis document (never recomputed here), so what
is printed is what the dossier holds; ``--json`` prints the same document's fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.report.layout import Col, console, escape, print_table

if TYPE_CHECKING:
    from harness.diagnose.diagnosis import DiagnosisResult
    from harness.dossier.diagnosis_details import InterventionRow


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _change(r: InterventionRow | None) -> str:
    """``80% -> 40% (-40 [-62, -7])``: before, after, and the paired difference with its interval."""
    if r is None or r.refusal_rate_before is None:
        return "-"
    mark = "*" if r.significant else ""
    return (f"{_pct(r.refusal_rate_before)} -> {_pct(r.refusal_rate_after)} "
            f"({100 * (r.delta or 0):+.0f} [{100 * (r.delta_ci_low or 0):+.0f}, {100 * (r.delta_ci_high or 0):+.0f}]){mark}")


def print_diagnosis(result: DiagnosisResult) -> None:
    """The per-language table at the diagnosis layer, the strongest layers, and where the entry went."""
    con = console
    doc = result.document
    d = doc.details
    ev = d.evaluation
    made = " (run now: there was none)" if ev.made_for_diagnosis else ""
    con.print(escape(f"diagnosis of {doc.package.name} {doc.package.version} on {d.model.name} "
                     f"({d.model.digest[:12]}): explains run {ev.run_id} (entry {ev.seq}){made}"))
    con.print(escape(f"{d.samples} prompts; layers {', '.join(map(str, d.layers))} of {d.model.layers_total}; "
                     f"reference language {d.reference_language}; activations at the {d.method.position}"))
    layer = d.diagnosis_layer
    at = {r.language: r for r in d.rows if r.layer == layer}
    gaps = {g.language: g for g in d.gaps}
    ablate = {r.language: r for r in d.interventions if r.intervention == "ablate"}
    add = {r.language: r for r in d.interventions if r.intervention == "add"}
    rows = []
    for lang in sorted(at):
        r, g = at[lang], gaps.get(lang)
        auroc = "-" if r.probe_auroc is None else \
            f"{r.probe_auroc:.2f} [{_num(r.probe_auroc_ci_low)}, {_num(r.probe_auroc_ci_high)}]"
        gap = "-" if g is None or g.gap is None else f"{_pct(g.recognition_rate)} vs {_pct(g.refusal_rate)}"
        rows.append([escape(lang), escape(auroc), escape(_num(r.transfer_auroc)), escape(_num(r.cosine_to_reference)),
                     escape(gap), escape("-" if g is None else f"{g.classification} ({g.reason})" if g.reason else str(g.classification)), escape(_change(ablate.get(lang))),
                     escape(_change(add.get(lang)))])
    for lang in ("all",):
        rows.append([lang, "", "", "", "", "", escape(_change(ablate.get(lang))), escape(_change(add.get(lang)))])
    print_table(
        f"at layer {layer} (the reference language's strongest separation)",
        [Col("language", "lang"), Col("probe AUROC [95% CI]", "AUROC", justify="right"),
         Col("transfer AUROC", "xfer", justify="right"), Col("cos to ref", "cos", justify="right"),
         Col("recognised vs refused", "rec/ref", justify="right"), Col("gap class", "class"),
         Col("refusal, direction ablated", "ablate", justify="right"),
         Col("refusal, direction added", "add", justify="right")],
        rows,
        legend=("probe AUROC: harmful vs harmless prompts by a leave-one-out difference-in-means probe "
                "(interval: Clopper-Pearson at min(n), conservative); transfer: the reference language's direction "
                "applied; recognised vs refused: harmful prompts the probe puts on the harmful side vs those the "
                "evaluation run refused; ablate / add: the reference refusal direction removed from layers "
                f"{', '.join(map(str, d.intervention.ablation_layers))} (should-refuse prompts) / added x"
                f"{d.intervention.addition_scale:g} at layer {d.intervention.addition_layer} (should-comply prompts), "
                f"{d.intervention.max_tokens} tokens; change in points with Newcombe's paired 95% interval; * = "
                "significant (exact McNemar; Holm over languages, 'all' on its own)"),
    )
    best: dict[str, tuple[float, int]] = {}
    for r in d.rows:
        if r.probe_auroc is not None and (r.language not in best or r.probe_auroc > best[r.language][0]):
            best[r.language] = (r.probe_auroc, r.layer)
    if len(d.layers) > 1 and best:
        con.print(escape("strongest separation per language: " + ", ".join(
            f"{lang} layer {lay} ({v:.2f})" for lang, (v, lay) in sorted(best.items()))))
    if d.intervention.direction == "refused-minus-answered-harmful":
        con.print(escape("the package has no should-comply prompts: no probe, no gap, no addition; the direction "
                         "ablated is refused minus answered harmful prompts of the reference language"))
    failures = [f"{g.language}: {g.classification}" for g in d.gaps
                if g.classification in ("representation failure", "action failure")]
    con.print(escape("failures shown: " + ("; ".join(failures) if failures else
                                           "none (no language shows a representation or action failure at this n)")))
    con.print(escape(f"recorded as entry {result.entry.seq} ({result.entry.kind} {doc.id}): "
                     f"{_rel(result.dossier.root / result.entry.document.path)}; numbers {d.numbers_sha256[:16]}"))
    caveat = ("the embedded tiny model and ten prompts per cell demonstrate the method; they are not a finding"
              if d.model.name == "tiny-chat" else "what these numbers can and cannot say")
    con.print(escape(f"{caveat} (docs/diagnosis.md)"), style="dim")


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
