"""Audit reproduction: re-run a signed run exactly as recorded and say whether it reproduced.

An auditor should not have to trust the record's numbers, nor this machine: the record
is checked against the trust policy and its dossier chain, the package is found by
its seal digest (a folder, or an archive from `harness package export`), the
environment is rebuilt from the package's lockfile when this one differs, the model
must have the recorded weights digest, and the run uses the recorded parameters and
seeds. The re-run is compared sample by sample (same answer, same verdict) and metric
by metric (within the package's stated tolerance rule), and the outcome is itself a
signed dossier entry that names the original record's digest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._internal.hashing import canonical_digest
from harness.audit.original import Original
from harness.backends.base import digest_model_files
from harness.dossier.events import EventPackage, EventRecord, Reference, new_id, now, sign_event
from harness.dossier.log import Entry, EventEntry
from harness.errors import BackendError
from harness.packages.manifest import Reproduction
from harness.packages.package import Package
from harness.record import RunRecord, read_outputs
from harness.run import RunOptions, run_package

EXACT = "REPRODUCED"
WITHIN = "REPRODUCED WITHIN TOLERANCE"
NOT = "NOT REPRODUCED"
EXIT_CODES = {EXACT: 0, WITHIN: 4, NOT: 5}
"""Exit codes of `harness reproduce` (1 and 2 keep their meaning: verification failed, bad input)."""


_SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent

COMPARED_FIELDS = ("response", "finish_reason", "verdict", "correct", "error", "judge")
"""Fields of an outputs line that must be identical for a sample to count as reproduced."""


# ---------------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class SampleDiff:
    id: str
    language: str
    fields: tuple[str, ...]
    original: dict[str, Any]
    rerun: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "language": self.language, "fields": list(self.fields),
                "original": self.original, "rerun": self.rerun}


@dataclass(frozen=True)
class MetricCheck:
    metric: str
    group: str
    original: float | None
    rerun: float | None
    ci: tuple[float, float] | None
    within: bool

    @property
    def identical(self) -> bool:
        return self.original == self.rerun

    def as_dict(self) -> dict[str, Any]:
        delta = None if self.original is None or self.rerun is None else round(self.rerun - self.original, 6)
        return {"metric": self.metric, "group": self.group, "original": self.original, "rerun": self.rerun,
                "delta": delta, "original_ci": list(self.ci) if self.ci else None, "within_tolerance": self.within}


def compare_samples(original: Path, rerun: Path) -> tuple[int, list[SampleDiff]]:
    """(samples compared, every differing sample in id order)."""
    a = {x["id"]: x for x in read_outputs(original)}
    b = {x["id"]: x for x in read_outputs(rerun)}
    diffs = []
    for sid in sorted(set(a) | set(b)):
        x, y = a.get(sid), b.get(sid)
        if x is None or y is None:
            present = x or y or {}
            diffs.append(SampleDiff(sid, present.get("language", ""), ("missing",),
                                    {"present": x is not None}, {"present": y is not None}))
            continue
        fields = tuple(f for f in COMPARED_FIELDS if x.get(f) != y.get(f))
        if fields:
            keep = ("response", "verdict", *[f for f in fields if f not in ("response", "verdict")])
            diffs.append(SampleDiff(sid, x.get("language", ""), fields, {f: x.get(f) for f in keep},
                                    {f: y.get(f) for f in keep}))
    return len(set(a) | set(b)), diffs


def compare_metrics(original: RunRecord, rerun: RunRecord, rule: Reproduction) -> list[MetricCheck]:
    new = {(m["metric"], m["group"]): m for m in rerun.metrics}
    out = []
    for m in original.metrics:
        key = (m["metric"], m["group"])
        r = new.get(key)
        ov, rv = m.get("value"), (r or {}).get("value")
        ci = (m["ci_low"], m["ci_high"]) if m.get("ci_low") is not None else None
        out.append(MetricCheck(m["metric"], m["group"], ov, rv, ci, r is not None and rule.within(ov, ci, rv)))
    seen = {(m["metric"], m["group"]) for m in original.metrics}
    for key, r in new.items():
        if key not in seen:
            out.append(MetricCheck(key[0], key[1], None, r.get("value"), None, False))
    return out


# ---------------------------------------------------------------------------- the command


@dataclass
class ReproduceOptions:
    ref: str
    dossiers_dir: Path | None = None
    trusted: Any = None
    package: str | Path | None = None
    archive: Path | None = None
    packages_dir: Path | None = None
    model: str | None = None
    allow_model_mismatch: bool = False
    seed: int | None = None
    endpoint: str | None = None
    serve: str | None = None
    vllm_python: str | None = None
    engine_args: tuple[str, ...] = ()
    mirror: Path | None = None
    threads: int = 1
    judge_model: str | None = None
    judge_endpoint: str | None = None
    config_dir: Path | None = None
    progress: bool = False
    environment: dict[str, Any] = field(default_factory=dict)
    show: int = 5


@dataclass
class ReproductionResult:
    verdict: str
    exact: bool
    original: Original
    rerun: RunRecord
    rerun_entry: Entry
    entry: EventEntry
    document: EventRecord
    samples_compared: int
    differing: list[SampleDiff]
    metrics: list[MetricCheck]
    rule: Reproduction
    reasons: list[str]
    key_created: Path | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    @property
    def out_of_tolerance(self) -> list[MetricCheck]:
        return [m for m in self.metrics if not m.within]


def resolve_model_path(record: RunRecord, override: str | None) -> Path | None:
    """The local model folder the record names (repo-relative for the embedded model), or ``override``."""
    if override:
        return Path(override)
    recorded = record.model.get("path")
    if not recorded or record.model.get("backend") != "transformers":
        return None
    p = Path(recorded)
    if p.is_absolute():
        return p
    src = _SOURCE_ROOT
    for base in (src, Path.cwd()):
        if (base / p).is_dir():
            return base / p
    return p


def check_model(record: RunRecord, path: Path | None, allow_mismatch: bool) -> tuple[str | None, list[str]]:
    """The local model's digest, refusing a different model unless allowed; (digest, reasons it is not exact)."""
    if path is None:
        return None, []
    if not path.is_dir():
        raise BackendError(f"the recorded model folder {path} does not exist here",
                           hint="pass --model PATH with the same weights (their digest is checked)")
    digest = canonical_digest(digest_model_files(path))
    want = record.model.get("digest")
    if digest == want:
        return digest, []
    if not allow_mismatch:
        raise BackendError(
            f"the model at {path} has weights digest {digest}, the record was made with {want}",
            hint="use the recorded model; --allow-model-mismatch re-runs anyway and marks the result as not an exact reproduction",
        )
    return digest, [f"model weights differ (recorded {str(want)[:12]}, used {digest[:12]}; --allow-model-mismatch)"]


def reproduce(opts: ReproduceOptions, original: Original, pkg: Package) -> ReproductionResult:
    """Re-run ``original`` with ``pkg`` as recorded, compare, sign and append the reproduction."""
    rec = original.record
    rule = pkg.manifest.reproduction_rule
    reasons: list[str] = []
    model_path = resolve_model_path(rec, opts.model)
    if rec.model.get("backend") == "transformers" and not opts.endpoint and not opts.serve:
        _, why = check_model(rec, model_path, opts.allow_model_mismatch)
        reasons += why
    run_seed = int(rec.seeds["run"])
    if opts.seed is not None and opts.seed != run_seed:
        reasons.append(f"run seed changed on purpose ({run_seed} -> {opts.seed}; --seed)")
        run_seed = opts.seed
    gen = rec.generation
    result = run_package(RunOptions(
        package=pkg.root, model=str(model_path) if model_path else (opts.model or rec.model.get("name")),
        mirror=opts.mirror, seed=run_seed, max_tokens=gen["max_tokens"],
        temperature=gen["temperature"], top_p=gen["top_p"], threads=opts.threads, endpoint=opts.endpoint,
        serve=opts.serve, vllm_python=opts.vllm_python, engine_args=opts.engine_args,
        judge_model=opts.judge_model, judge_endpoint=opts.judge_endpoint, dossiers_dir=original.dossier.root.parent,
        config_dir=opts.config_dir, limit=rec.overrides.get("limit"), progress=opts.progress, purpose="reproduction",
    ))
    new = result.record
    if new.model.get("digest") != rec.model.get("digest"):
        if not opts.allow_model_mismatch:
            reasons.append("the served model's digest differs from the record's")
        elif not any(r.startswith("model weights differ") for r in reasons):
            reasons.append("model digest differs (--allow-model-mismatch)")
    if new.model.get("engine_args") != rec.model.get("engine_args"):
        reasons.append("engine arguments differ from the recorded ones")
    if new.scorer != rec.scorer:
        reasons.append("the scorer differs from the recorded one")
    compared, differing = compare_samples(original.outputs, result.run_dir / "outputs.jsonl")
    metrics = compare_metrics(rec, new, rule)
    identical = not differing and all(m.identical for m in metrics)
    served_mismatch = "the served model's digest differs from the record's" in reasons
    if identical and not reasons:
        verdict = EXACT
    elif all(m.within for m in metrics) and not served_mismatch and new.status == "complete":
        verdict = WITHIN
    else:
        verdict = NOT
    env = opts.environment
    doc = EventRecord(
        kind="reproduction",
        id=new_id(),
        time=now(),
        package=EventPackage(name=rec.package.name, version=rec.package.version, seal=rec.package.seal),
        refers_to=Reference(kind="run", sha256=original.entry.record.sha256, run_id=rec.run_id, seq=original.entry.seq),
        summary={"verdict": verdict, "exact": verdict == EXACT, "original_run": rec.run_id, "rerun": new.run_id,
                 "samples": compared, "differing_samples": len(differing),
                 "metrics_out_of_tolerance": sum(1 for m in metrics if not m.within)},
        details={
            "original": {"run_id": rec.run_id, "record_sha256": original.entry.record.sha256, "seq": original.entry.seq,
                         "outputs_content_sha256": rec.outputs.content_sha256, "signer": original.signer},
            "rerun": {"run_id": new.run_id, "record_sha256": result.entry.record.sha256, "seq": result.entry.seq,
                      "outputs_content_sha256": new.outputs.content_sha256},
            "environment": {"mode": env.get("mode", "current"), "lockfile_sha256": env.get("sha256"),
                            "matched_before": env.get("matches"), "rerun_lockfile_matches": new.lockfile.matches},
            "model": {"recorded_digest": rec.model.get("digest"), "used_digest": new.model.get("digest"),
                      "allow_mismatch": opts.allow_model_mismatch},
            "not_exact_because": reasons,
            "tolerance": {**rule.model_dump(mode="json"), "stated_in_package": pkg.manifest.reproduction is not None,
                          "description": rule.describe()},
            "first_differing_samples": [d.as_dict() for d in differing[:20]],
            "metrics": [m.as_dict() for m in metrics],
        },
    )
    bundle, created = sign_event(doc, {}, opts.config_dir)
    entry = original.dossier.add_event(doc, bundle, {})
    return ReproductionResult(
        verdict=verdict, exact=verdict == EXACT, original=original, rerun=new, rerun_entry=result.entry, entry=entry,
        document=doc, samples_compared=compared, differing=differing, metrics=metrics, rule=rule, reasons=reasons,
        key_created=created or result.key_created,
    )


def summary(r: ReproductionResult, show: int = 5) -> dict[str, Any]:
    return {
        "verdict": r.verdict,
        "exact": r.exact,
        "exit_code": r.exit_code,
        "original": {"run_id": r.original.record.run_id, "record_sha256": r.original.entry.record.sha256,
                     "signer": r.original.signer},
        "rerun": {"run_id": r.rerun.run_id, "seq": r.rerun_entry.seq},
        "entry": {"seq": r.entry.seq, "id": r.entry.id},
        "tolerance": r.document.details["tolerance"],
        "not_exact_because": r.reasons,
        "samples": r.samples_compared,
        "differing_samples": len(r.differing),
        "first_differing_samples": [d.as_dict() for d in r.differing[:show]],
        "metrics_out_of_tolerance": [m.as_dict() for m in r.out_of_tolerance],
        "metrics": [m.as_dict() for m in r.metrics],
        "environment": r.document.details["environment"],
    }


def _short(text: Any, n: int = 70) -> str:
    t = " ".join(str(text).split())
    return t if len(t) <= n else t[: n - 1] + "…"


def format_result(r: ReproductionResult, show: int = 5) -> str:
    """The verdict first, then why: what was compared, under which rule, and what differed."""
    rec = r.original.record
    env = r.document.details["environment"]
    tol = r.document.details["tolerance"]
    lines = [
        f"{r.verdict}{' (exact)' if r.exact else ''}",
        f"  original:  run {rec.run_id} of {rec.package.name} {rec.package.version} (entry {r.original.entry.seq}, "
        f"signed by {r.original.signer}; chain verified)",
        f"  package:   seal {rec.package.seal} found and checked",
        f"  env:       {'rebuilt from' if env['mode'] == 'rebuilt' else 'this environment,'} lockfile "
        f"{str(env['lockfile_sha256'])[:12]} ({'matches' if env['rerun_lockfile_matches'] else 'DIFFERS'})",
        f"  model:     {rec.model.get('name')} digest {str(rec.model.get('digest'))[:12]}"
        f"{'' if r.rerun.model.get('digest') == rec.model.get('digest') else ' -> used ' + str(r.rerun.model.get('digest'))[:12]}",
        f"  re-run:    run {r.rerun.run_id} (entry {r.rerun_entry.seq}); reproduction recorded as entry {r.entry.seq}",
        f"  tolerance: {tol['description']} ({'stated in the package' if tol['stated_in_package'] else 'default rule'})",
        f"  samples:   {r.samples_compared} compared, {len(r.differing)} differ (response, finish reason or verdict)",
        f"  metrics:   {len(r.metrics)} compared, {len(r.out_of_tolerance)} out of tolerance",
    ]
    for why in r.reasons:
        lines.append(f"  not exact: {why}")
    if r.differing:
        lines.append(f"first differing samples ({min(show, len(r.differing))} of {len(r.differing)}):")
        for d in r.differing[:show]:
            lines.append(f"  {d.id} [{d.language}] differs in {', '.join(d.fields)}")
            lines.append(f"    original: {d.original.get('verdict')!s:<10} {_short(d.original.get('response', ''))!r}")
            lines.append(f"    re-run:   {d.rerun.get('verdict')!s:<10} {_short(d.rerun.get('response', ''))!r}")
    bad = r.out_of_tolerance
    if bad:
        lines.append("metrics out of tolerance:")
        for m in bad:
            ov = "n/a" if m.original is None else f"{m.original:.4f}"
            rv = "n/a" if m.rerun is None else f"{m.rerun:.4f}"
            ci = f" CI [{m.ci[0]:.3f}, {m.ci[1]:.3f}]" if m.ci else ""
            lines.append(f"  {m.metric:<20} {m.group:<22} original {ov}{ci}  re-run {rv}")
    return "\n".join(lines)
