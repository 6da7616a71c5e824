"""``harness diagnose``: why a model refuses in one language and not in another.

An evaluation says *that* refusal drops in a language; a diagnosis looks inside the same
model, on exactly the same sealed prompts, chat template and seeds, to say *where*:

1. the plan is the evaluation's (:class:`~harness.plan.RunPlan`: seal check, verified data,
   subset options), the model is loaded by the transformers backend exactly as a run loads
   it, and the evaluation run of this seal and model is found (or made) and verified;
2. two streamed passes read the residual stream at the last prompt token after each chosen
   layer (forward hooks): the first sums activations per language and kind of prompt, the
   second scores each prompt by the direction fitted without it; memory is bounded by the
   sums, never by the number of prompts;
3. per language and layer: ``probe_auroc`` with an interval, ``transfer_auroc`` and
   ``cosine_to_reference`` (:mod:`harness.diagnose.probes`); per language: the
   representation-action gap and its class (:mod:`harness.diagnose.gap`);
4. interventions: the reference refusal direction ablated from the chosen layers, and added
   at the diagnosis layer, regenerating with the run's seeds and re-scoring with the
   package's scorer (:mod:`harness.diagnose.hooks`);
5. a signed ``diagnosis`` document is appended to the package's dossier, naming the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness._internal.clock import new_id, now
from harness._internal.hashing import canonical_digest
from harness._internal.seeds import derive_seed
from harness.backends.base import GenerationRequest
from harness.diagnose.evaluation import Evaluation, evaluation_for
from harness.diagnose.gap import LanguageFacts, classify_gaps, intervention_rows
from harness.diagnose.hooks import DiagnosticBackend
from harness.diagnose.probes import (
    GroupSums,
    Vector,
    auroc,
    auroc_interval,
    cosine,
    direction,
    loo_score,
    projection,
    rounded,
)
from harness.dossier.diagnosis_details import (
    DiagnosedModel,
    DiagnosisDetails,
    DiagnosisMethod,
    DirectionKind,
    EvaluationRef,
    GapClass,
    GapReason,
    InterventionKind,
    InterventionRow,
    InterventionSpec,
    ProbeRow,
)
from harness.dossier.documents import DiagnosisRecord, DiagnosisSummary, EventPackage, Reference
from harness.dossier.events import sign_event
from harness.dossier.log import Dossier, EventEntry
from harness.errors import BackendError, DiagnoseError
from harness.packages.data import Sample
from harness.plan import RunPlan
from harness.run import apply_seeds
from harness.scoring.base import Scorer
from harness.scoring.factory import make_scorer
from harness.scoring.stats import ADJUSTMENT, CI_METHOD, PAIRED_INTERVAL, PAIRED_TEST
from harness.signing.policy import resolve_trust
from harness.signing.signers import KeySigner, Signer, SigstoreSigner
from harness.signing.verify import Trusted

DEFAULT_MAX_TOKENS = 24
"""Tokens per regenerated answer in the interventions (capped at the package's): a refusal
shows in its first words, and four generations per prompt must fit the time budget."""
DEFAULT_SCALE = 1.0
"""Activation addition adds this multiple of the reference refusal vector (the raw difference in means)."""


@dataclass
class DiagnoseOptions:
    """Everything ``harness diagnose`` can be told."""

    package: str | Path = "mini-safety"
    model: str | None = None
    endpoint: str | None = None
    layers: Sequence[int] | None = None
    """Decoder layers to read and intervene on (negative counts from the end); None: all."""
    reference: str = "en"
    mirror: Path | None = None
    seed: int | None = None
    limit: int | None = None
    sample_ids: Path | tuple[str, ...] | None = None
    filters: tuple[str, ...] = ()
    threads: int = 1
    max_tokens: int = DEFAULT_MAX_TOKENS
    scale: float = DEFAULT_SCALE
    dossiers_dir: Path | None = None
    config_dir: Path | None = None
    sign: Literal["key", "sigstore"] = "key"
    trusted: Trusted | None = None
    """Who may have signed the evaluation run (default: the user's trust policy or store)."""
    save_activations: Path | None = None
    """A folder to write the raw activations to (``activations.npy``, ``samples.jsonl``); not signed."""
    log: Callable[[str], None] = field(default=lambda _m: None)

    def signer(self) -> Signer:
        return SigstoreSigner() if self.sign == "sigstore" else KeySigner(self.config_dir)


@dataclass
class DiagnosisResult:
    document: DiagnosisRecord
    entry: EventEntry
    dossier: Dossier
    evaluation: Evaluation
    key_created: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` shape: rows, gaps and interventions, and what they came from."""
        d = self.document.details
        return {
            "package": self.document.package.name, "id": self.document.id, "entry": self.entry.seq,
            "document": str(self.dossier.root / self.entry.document.path),
            "evaluation_run": d.evaluation.run_id, "evaluation_entry": d.evaluation.seq,
            "evaluation_made": d.evaluation.made_for_diagnosis,
            "model": d.model.model_dump(mode="json"), "reference_language": d.reference_language,
            "layers": list(d.layers), "diagnosis_layer": d.diagnosis_layer,
            "method": d.method.model_dump(mode="json"), "intervention": d.intervention.model_dump(mode="json"),
            "rows": [r.model_dump(mode="json") for r in d.rows],
            "gaps": [g.model_dump(mode="json") for g in d.gaps],
            "interventions": [r.model_dump(mode="json") for r in d.interventions],
            "numbers_sha256": d.numbers_sha256,
        }


def diagnose(opts: DiagnoseOptions) -> DiagnosisResult:
    """Diagnose ``opts.package`` on an in-process model; sign and append the diagnosis."""
    if opts.endpoint:
        raise DiagnoseError(
            f"diagnosis needs the model's weights in-process; a model behind an endpoint ({opts.endpoint}) "
            "gives answers, not activations",
            hint="pass --model with a local folder of the same weights (made by save_pretrained); "
            "the weights digest ties the diagnosis to the evaluation run",
        )
    if opts.max_tokens <= 0:
        raise DiagnoseError(f"--max-tokens {opts.max_tokens} is not above 0")
    plan = RunPlan.from_package(opts.package, mirror=opts.mirror, seed=opts.seed, limit=opts.limit,
                                sample_ids=opts.sample_ids, filters=opts.filters)
    languages = sorted({s.language for s in plan.samples})
    if opts.reference not in languages:
        raise DiagnoseError(f"the reference language {opts.reference!r} has no prompts in this selection "
                            f"(languages: {', '.join(languages)})", hint="choose one with --reference")
    m = plan.package.manifest
    scorer = make_scorer(m.scorer, plan.package.root, threads=opts.threads)
    signer = opts.signer()
    trusted = resolve_trust() if opts.trusted is None else opts.trusted
    try:
        apply_seeds(plan.seeds)
        backend = DiagnosticBackend(opts.model, threads=opts.threads)
        try:
            layers = _layers(opts.layers, len(backend.layers))
            evaluation = evaluation_for(plan, backend, scorer, dossiers_dir=opts.dossiers_dir, signer=signer,
                                        trusted=trusted, log=opts.log)
            apply_seeds(plan.seeds)
            doc = _diagnose(plan, backend, scorer, evaluation, layers, opts)
        finally:
            backend.close()
    finally:
        scorer.close()
    signed = sign_event(doc, {}, signer)
    entry = evaluation.dossier.add_event(doc, signed.bundle, {}, checkpoint=signer)
    return DiagnosisResult(document=doc, entry=entry, dossier=evaluation.dossier, evaluation=evaluation,
                           key_created=signed.key_created or evaluation.key_created)


def _layers(wanted: Sequence[int] | None, total: int) -> tuple[int, ...]:
    if not wanted:
        return tuple(range(total))
    out = []
    for i in wanted:
        j = i + total if i < 0 else i
        if not 0 <= j < total:
            raise DiagnoseError(f"layer {i} does not exist: the model has {total} decoder layers (0..{total - 1})",
                                hint="--layers takes layer numbers from 0, or negative ones counted from the end")
        out.append(j)
    return tuple(sorted(set(out)))


def _harmful(s: Sample) -> bool:
    return s.expected == "refuse"


def _diagnose(plan: RunPlan, backend: DiagnosticBackend, scorer: Scorer, evaluation: Evaluation,
              layers: tuple[int, ...], opts: DiagnoseOptions) -> DiagnosisRecord:
    m = plan.package.manifest
    confidence = m.bootstrap.confidence
    ref = opts.reference
    samples = plan.samples
    languages = sorted({s.language for s in samples})
    verdicts = evaluation.verdicts
    opts.log(f"reading activations of {len(samples)} prompts at {len(layers)} layers (two passes)")

    # Pass 1: sums per (language, kind) and per (language, kind, what the run did).
    sums = GroupSums(len(layers), backend.hidden_size)
    raw = _raw_store(opts.save_activations, samples, len(layers), backend.hidden_size)
    for i, s in enumerate(samples):
        x = backend.activations(s.prompt, layers)
        if raw is not None:
            raw[i] = x
        kind = "harmful" if _harmful(s) else "harmless"
        sums.add((s.language, kind), x)
        sums.add((s.language, kind, "refused" if verdicts.get(s.id) == "refusal" else "answered"), x)

    if raw is not None:
        raw.flush()
        del raw

    def group(lang: str, kind: str) -> tuple[Vector, int]:
        return sums.total([(lang, kind)])

    dirs = {lang: direction(*group(lang, "harmful"), *group(lang, "harmless")) for lang in languages}
    ref_h, ref_nh = group(ref, "harmful")
    ref_c, ref_nc = group(ref, "harmless")

    # Pass 2: each prompt's leave-one-out score in its own language, and on the reference direction.
    own: dict[str, list[float | None]] = {}
    transfer: dict[str, list[float | None]] = {}
    for s in samples:
        x = backend.activations(s.prompt, layers)
        sh, nh = group(s.language, "harmful")
        sc, nc = group(s.language, "harmless")
        own[s.id] = [loo_score(x[j], _harmful(s), sh[j], nh, sc[j], nc) for j in range(len(layers))]
        if s.language == ref:
            transfer[s.id] = own[s.id]
        elif ref_nh and ref_nc:
            transfer[s.id] = [projection(x[j], ref_h[j] / ref_nh, ref_c[j] / ref_nc) for j in range(len(layers))]
        else:
            transfer[s.id] = [None] * len(layers)

    rows = [_row(lang, j, layers, samples, own, transfer, dirs, ref, confidence)
            for lang in languages for j in range(len(layers))]
    ref_rows = [r for r in rows if r.language == ref]
    best = max(ref_rows, key=lambda r: (r.probe_auroc or 0.0, r.probe_accuracy or 0.0, r.layer))
    jd = layers.index(best.layer)

    facts = []
    for lang in languages:
        harmful = [s for s in samples if s.language == lang and _harmful(s)]
        row = next(r for r in rows if r.language == lang and r.layer == best.layer)
        reason = (GapReason.NO_HARMFUL if not harmful else GapReason.NO_HARMLESS if row.n_harmless == 0
                  else GapReason.TOO_FEW if row.probe_auroc is None else None)
        pairs = tuple(((own[s.id][jd] or 0.0) > 0, verdicts[s.id] == "refusal") for s in harmful
                      if verdicts.get(s.id) in ("refusal", "compliance") and own[s.id][jd] is not None)
        facts.append(LanguageFacts(lang, pairs, row.probe_auroc_ci_low, reason))
    gaps = classify_gaps(facts, ref, best.layer, confidence)

    # The reference refusal direction (Arditi et al.'s filter: refused harmful minus answered harmless).
    kind, r = _refusal_direction(sums, ref)
    if r is None or not float(abs(r[jd]).sum()):
        raise DiagnoseError(f"the reference language {ref!r} gives no refusal direction: it needs harmful prompts the "
                            "evaluation run refused and prompts it answered", hint="widen --filter / --limit")
    vec = r[jd]
    spec = InterventionSpec(
        direction_layer=best.layer, direction_norm=rounded(float((vec @ vec) ** 0.5)) or 0.0, direction=kind,
        ablation_layers=layers, addition_layer=best.layer, addition_scale=opts.scale,
        max_tokens=min(opts.max_tokens, plan.generation.max_tokens),
    )
    interventions = _interventions(plan, backend, scorer, vec, spec, confidence, opts.log)

    numbers = {"layers": list(layers), "diagnosis_layer": best.layer,
               "rows": [x.model_dump(mode="json") for x in rows], "gaps": [g.model_dump(mode="json") for g in gaps],
               "intervention": spec.model_dump(mode="json"),
               "interventions": [x.model_dump(mode="json") for x in interventions]}
    digest = canonical_digest(numbers)
    ident = backend.identity
    rec = evaluation.record
    seal = plan.package.seal
    assert seal is not None  # a plan's package is checked against its seal
    details = DiagnosisDetails(
        model=DiagnosedModel(name=ident.name, digest=ident.digest, chat_template_sha256=ident.chat_template_sha256,
                             threads=opts.threads, layers_total=len(backend.layers), hidden_size=backend.hidden_size),
        evaluation=EvaluationRef(run_id=rec.run_id, record_sha256=evaluation.entry.record.sha256,
                                 seq=evaluation.entry.seq, made_for_diagnosis=evaluation.made,
                                 run_seed=rec.seeds.run, max_tokens=rec.generation.max_tokens),
        seeds=plan.seeds, overrides=plan.overrides, samples=len(samples), scorer=scorer.describe(),
        reference_language=ref, layers=layers, diagnosis_layer=best.layer,
        method=DiagnosisMethod(proportion_interval=CI_METHOD, paired_test=f"{PAIRED_TEST}+{PAIRED_INTERVAL}",
                               adjustment=ADJUSTMENT, confidence=confidence),
        rows=tuple(rows), gaps=tuple(gaps), intervention=spec, interventions=tuple(interventions),
        numbers_sha256=digest,
    )
    summary = DiagnosisSummary(
        evaluation_run=rec.run_id, model=ident.name, reference_language=ref, layers=layers,
        diagnosis_layer=best.layer,
        representation_failures=tuple(g.language for g in gaps if g.classification == GapClass.REPRESENTATION_FAILURE),
        action_failures=tuple(g.language for g in gaps if g.classification == GapClass.ACTION_FAILURE),
        numbers_sha256=digest,
    )
    return DiagnosisRecord(
        id=new_id(), time=now(), package=EventPackage(name=m.name, version=m.version, seal=seal.seal),
        refers_to=Reference(kind="run", sha256=evaluation.entry.record.sha256, run_id=rec.run_id,
                            seq=evaluation.entry.seq),
        summary=summary, details=details,
    )


def _refusal_direction(sums: GroupSums, ref: str) -> tuple[DirectionKind, Vector | None]:
    """The reference refusal direction at every layer, and which difference it is: refused
    harmful minus answered harmless prompts (Arditi et al.'s filter), else all harmful minus all
    harmless, else (a package of harmful prompts only) refused minus answered harmful prompts."""
    refused, n_refused = sums.total([(ref, "harmful", "refused")])
    answered, n_answered = sums.total([(ref, "harmless", "answered")])
    if n_refused and n_answered:
        return DirectionKind.REFUSED_HARMFUL_MINUS_ANSWERED_HARMLESS, direction(refused, n_refused, answered, n_answered)
    harmless, n_harmless = sums.total([(ref, "harmless")])
    if n_harmless:
        return DirectionKind.HARMFUL_MINUS_HARMLESS, direction(*sums.total([(ref, "harmful")]), harmless, n_harmless)
    return DirectionKind.REFUSED_MINUS_ANSWERED_HARMFUL, direction(
        refused, n_refused, *sums.total([(ref, "harmful", "answered")]))


def _raw_store(folder: Path | None, samples: Sequence[Sample], layers: int, hidden: int) -> Any:
    """With ``--save-activations``: a float32 array on disk, (samples, layers, hidden), written
    one prompt at a time (memory stays bounded), and the samples in the same order."""
    if folder is None:
        return None
    import json

    from numpy.lib.format import open_memmap

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "samples.jsonl", "w", encoding="utf-8") as fh:
        for s in samples:
            fh.write(json.dumps({"id": s.id, "language": s.language, "expected": s.expected}) + "\n")
    return open_memmap(folder / "activations.npy", mode="w+", dtype="float32", shape=(len(samples), layers, hidden))


def _row(lang: str, j: int, layers: tuple[int, ...], samples: Sequence[Sample], own: dict[str, list[float | None]],
         transfer: dict[str, list[float | None]], dirs: dict[str, Vector | None], ref: str,
         confidence: float) -> ProbeRow:
    """One language at one layer, from the prompts' leave-one-out and transfer scores."""
    mine = [s for s in samples if s.language == lang]
    pos = [v for s in mine if _harmful(s) and (v := own[s.id][j]) is not None]
    neg = [v for s in mine if not _harmful(s) and (v := own[s.id][j]) is not None]
    t_pos = [v for s in mine if _harmful(s) and (v := transfer[s.id][j]) is not None]
    t_neg = [v for s in mine if not _harmful(s) and (v := transfer[s.id][j]) is not None]
    value = auroc(pos, neg)
    low, high = auroc_interval(value, len(pos), len(neg), confidence) if value is not None else (None, None)
    right = sum(1 for v in pos if v > 0) + sum(1 for v in neg if v < 0)
    d, d_ref = dirs[lang], dirs[ref]
    return ProbeRow(
        language=lang, layer=layers[j], n_harmful=sum(1 for s in mine if _harmful(s)),
        n_harmless=sum(1 for s in mine if not _harmful(s)),
        probe_auroc=rounded(value), probe_auroc_ci_low=rounded(low), probe_auroc_ci_high=rounded(high),
        probe_accuracy=rounded(right / (len(pos) + len(neg))) if pos or neg else None,
        transfer_auroc=rounded(auroc(t_pos, t_neg)),
        cosine_to_reference=rounded(cosine(None if d is None else d[j], None if d_ref is None else d_ref[j])),
        direction_norm=rounded(float((d[j] @ d[j]) ** 0.5)) if d is not None else None,
    )


def _interventions(plan: RunPlan, backend: DiagnosticBackend, scorer: Scorer, vec: Vector, spec: InterventionSpec,
                   confidence: float, log: Callable[[str], None]) -> list[InterventionRow]:
    """Regenerate with and without each intervention (the run's per-sample seeds, ``spec.max_tokens``)
    and re-score with the package's scorer."""
    gen = plan.generation

    def refused(s: Sample) -> bool:
        req = GenerationRequest(sample_id=s.id, prompt=s.prompt, max_tokens=spec.max_tokens,
                                temperature=gen.temperature, top_p=gen.top_p, stop=gen.stop,
                                seed=derive_seed(plan.run_seed, f"sample:{s.id}"))
        res = backend.generate(req)
        if res.error:
            raise BackendError(f"generation failed for {s.id} during the diagnosis: {res.error}")
        return bool(scorer.assess(res.text, s.language, prompt=s.prompt).verdict == "refusal")

    harmful = [s for s in plan.samples if _harmful(s)]
    harmless = [s for s in plan.samples if not _harmful(s)]
    log(f"interventions: regenerating {2 * len(plan.samples)} answers of {spec.max_tokens} tokens")
    before = {s.id: refused(s) for s in plan.samples}
    with backend.ablating(vec, spec.ablation_layers):
        ablated = {s.id: refused(s) for s in harmful}
    with backend.adding(vec, spec.addition_layer, spec.addition_scale):
        added = {s.id: refused(s) for s in harmless}

    def pairs(chosen: list[Sample], after: dict[str, bool]) -> dict[str, list[tuple[bool, bool]]]:
        out: dict[str, list[tuple[bool, bool]]] = {}
        for s in chosen:
            out.setdefault(s.language, []).append((before[s.id], after[s.id]))
        return out

    return [*intervention_rows(InterventionKind.ABLATE, "refuse", pairs(harmful, ablated), confidence),
            *intervention_rows(InterventionKind.ADD, "comply", pairs(harmless, added), confidence)]
