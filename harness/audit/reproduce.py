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

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._internal.clock import new_id, now
from harness._internal.hashing import canonical_digest
from harness.audit.environment import EnvironmentPlan
from harness.audit.original import Original
from harness.backends.base import digest_model_files
from harness.dossier.documents import (
    EnvironmentInfo,
    EventPackage,
    MetricCheck,
    ModelCheck,
    OriginalRun,
    Reference,
    ReproductionDetails,
    ReproductionRecord,
    ReproductionSummary,
    ReproductionVerdict,
    RerunInfo,
    SampleDifference,
    ToleranceInfo,
)
from harness.dossier.events import sign_event
from harness.dossier.log import Entry, EventEntry
from harness.errors import BackendError
from harness.packages.manifest import Reproduction
from harness.packages.package import Package
from harness.plan import RunPlan
from harness.record import OUTPUTS_NAME, RunRecord, read_outputs
from harness.run import RunOptions, run_plan
from harness.signing.signers import KeySigner

EXIT_CODES = {ReproductionVerdict.EXACT: 0, ReproductionVerdict.WITHIN_TOLERANCE: 4,
              ReproductionVerdict.NOT_REPRODUCED: 5}
"""Exit codes of `harness reproduce` (1 and 2 keep their meaning: verification failed, bad input)."""

_SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent

COMPARED_FIELDS = ("response", "finish_reason", "verdict", "correct", "error", "judge")
"""Fields of an outputs line that must be identical for a sample to count as reproduced."""


class NotExact(enum.Enum):
    """Why a re-run is not an exact reproduction, whatever its answers."""

    MODEL_WEIGHTS_DIFFER = "model weights differ (--allow-model-mismatch)"
    """Local weights other than the recorded ones, allowed by the auditor."""
    SERVED_MODEL_DIFFERS = "the served model's digest differs from the record's"
    """What answered is not what was recorded, and nobody allowed it: never a reproduction."""
    MODEL_DIGEST_DIFFERS_ALLOWED = "model digest differs (--allow-model-mismatch)"
    SEED_CHANGED = "run seed changed on purpose (--seed)"
    ENGINE_ARGS_DIFFER = "engine arguments differ from the recorded ones"
    SCORER_DIFFERS = "the scorer differs from the recorded one"


@dataclass(frozen=True)
class Reason:
    """One reason the reproduction is not exact: its kind, and the words for people."""

    kind: NotExact
    message: str


# ---------------------------------------------------------------------------- comparing


def compare_samples(original: Path, rerun: Path) -> tuple[int, list[SampleDifference]]:
    """(samples compared, every differing sample in id order)."""
    a = {x["id"]: x for x in read_outputs(original)}
    b = {x["id"]: x for x in read_outputs(rerun)}
    diffs = []
    for sid in sorted(set(a) | set(b)):
        x, y = a.get(sid), b.get(sid)
        if x is None or y is None:
            present = x or y or {}
            diffs.append(SampleDifference(id=sid, language=present.get("language", ""), fields=("missing",),
                                          original={"present": x is not None}, rerun={"present": y is not None}))
            continue
        fields = tuple(f for f in COMPARED_FIELDS if x.get(f) != y.get(f))
        if fields:
            keep = ("response", "verdict", *[f for f in fields if f not in ("response", "verdict")])
            diffs.append(SampleDifference(id=sid, language=x.get("language", ""), fields=fields,
                                          original={f: x.get(f) for f in keep}, rerun={f: y.get(f) for f in keep}))
    return len(set(a) | set(b)), diffs



def compare_metrics(original: RunRecord, rerun: RunRecord, rule: Reproduction) -> list[MetricCheck]:
    """Each metric of the original against the re-run's, under the package's tolerance rule."""
    new = {(m.metric, m.group): m for m in rerun.metrics}
    out = []
    for m in original.metrics:
        r = new.get((m.metric, m.group))
        rv = r.value if r is not None else None
        ci = (m.ci_low, m.ci_high)
        out.append(MetricCheck(metric=m.metric, group=m.group, original=m.value, rerun=rv,
                               delta=None if rv is None else round(rv - m.value, 6), original_ci=ci,
                               within_tolerance=r is not None and rule.within(m.value, ci, rv)))
    seen = {(m.metric, m.group) for m in original.metrics}
    for (metric, group), r in new.items():
        if (metric, group) not in seen:
            out.append(MetricCheck(metric=metric, group=group, original=None, rerun=r.value, delta=None,
                                   original_ci=None, within_tolerance=False))
    return out


def decide(metrics: list[MetricCheck], differing: list[SampleDifference], reasons: list[Reason],
           complete: bool) -> ReproductionVerdict:
    """Exact: same answers, verdicts and metrics, and nothing changed on purpose. Within
    tolerance: every metric within the rule, the recorded model answered, and the re-run
    is complete. Anything else: not reproduced."""
    kinds = {r.kind for r in reasons}
    if not differing and all(m.original == m.rerun for m in metrics) and not reasons:
        return ReproductionVerdict.EXACT
    if all(m.within_tolerance for m in metrics) and NotExact.SERVED_MODEL_DIFFERS not in kinds and complete:
        return ReproductionVerdict.WITHIN_TOLERANCE
    return ReproductionVerdict.NOT_REPRODUCED


# ---------------------------------------------------------------------------- the command


@dataclass
class ReproduceOptions:
    """How to re-run: which model and server (the recorded one by default), which judge,
    where the data mirror is, and whether a different model or seed is allowed."""

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
    environment: EnvironmentPlan | None = None
    """Where this process runs (from :func:`harness.audit.environment.environment_plan`)."""


@dataclass
class ReproductionResult:
    verdict: ReproductionVerdict
    original: Original
    rerun: RunRecord
    rerun_entry: Entry
    entry: EventEntry
    document: ReproductionRecord
    samples_compared: int
    differing: list[SampleDifference]
    metrics: list[MetricCheck]
    rule: Reproduction
    reasons: list[Reason]
    key_created: Path | None = None

    @property
    def exact(self) -> bool:
        return self.verdict is ReproductionVerdict.EXACT

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    @property
    def out_of_tolerance(self) -> list[MetricCheck]:
        return [m for m in self.metrics if not m.within_tolerance]


def resolve_model_path(record: RunRecord, override: str | None) -> Path | None:
    """The local model folder the record names (repo-relative for the embedded model), or ``override``."""
    if override:
        return Path(override)
    recorded = record.model.path
    if not recorded or record.model.backend != "transformers":
        return None
    p = Path(recorded)
    if p.is_absolute():
        return p
    src = _SOURCE_ROOT
    for base in (src, Path.cwd()):
        if (base / p).is_dir():
            return base / p
    return p



def check_model(record: RunRecord, path: Path | None, allow_mismatch: bool) -> list[Reason]:
    """Refuse local weights other than the recorded ones unless allowed; the reasons the run is then not exact."""
    if path is None:
        return []
    if not path.is_dir():
        raise BackendError(f"the recorded model folder {path} does not exist here",
                           hint="pass --model PATH with the same weights (their digest is checked)")
    digest = canonical_digest(digest_model_files(path))
    want = record.model.digest
    if digest == want:
        return []
    if not allow_mismatch:
        raise BackendError(
            f"the model at {path} has weights digest {digest}, the record was made with {want}",
            hint="use the recorded model; --allow-model-mismatch re-runs anyway and marks the result as not an exact reproduction",
        )
    return [Reason(NotExact.MODEL_WEIGHTS_DIFFER,
                   f"model weights differ (recorded {want[:12]}, used {digest[:12]}; --allow-model-mismatch)")]


def recorded_device(record: RunRecord) -> dict[str, Any]:
    """The device, dtype and batch size a transformers run recorded (batching and the device
    change the arithmetic): a re-run uses them, and fails (exit 2) where that device is missing."""
    args = record.model.engine_args
    if record.model.backend != "transformers":
        return {}
    return {k: v for k, v in (("device", args.device), ("dtype", args.dtype), ("batch_size", args.batch_size))
            if v is not None}


def reproduce(opts: ReproduceOptions, original: Original, pkg: Package) -> ReproductionResult:
    """Re-run ``original`` with ``pkg`` as recorded, compare, sign and append the reproduction."""
    rec = original.record
    rule = pkg.manifest.reproduction_rule
    reasons: list[Reason] = []
    model_path = resolve_model_path(rec, opts.model)
    if rec.model.backend == "transformers" and not opts.endpoint and not opts.serve:
        reasons += check_model(rec, model_path, opts.allow_model_mismatch)
    if opts.seed is not None and opts.seed != rec.seeds.run:
        reasons.append(Reason(NotExact.SEED_CHANGED,
                              f"run seed changed on purpose ({rec.seeds.run} -> {opts.seed}; --seed)"))
    ids = [line["id"] for line in read_outputs(original.outputs)] if rec.overrides.sample_ids else None
    plan = RunPlan.from_record(rec, pkg, mirror=opts.mirror, seed=opts.seed, sample_ids=ids)
    result = run_plan(plan, RunOptions(
        package=pkg.root, model=str(model_path) if model_path else (opts.model or rec.model.name),
        threads=opts.threads, endpoint=opts.endpoint, serve=opts.serve, vllm_python=opts.vllm_python,
        engine_args=opts.engine_args, judge_model=opts.judge_model, judge_endpoint=opts.judge_endpoint,
        dossiers_dir=original.dossier.root.parent, config_dir=opts.config_dir, progress=opts.progress,
        **recorded_device(rec),
    ))
    new = result.record
    if new.model.digest != rec.model.digest:
        if not opts.allow_model_mismatch:
            reasons.append(Reason(NotExact.SERVED_MODEL_DIFFERS, NotExact.SERVED_MODEL_DIFFERS.value))
        elif not any(r.kind is NotExact.MODEL_WEIGHTS_DIFFER for r in reasons):
            reasons.append(Reason(NotExact.MODEL_DIGEST_DIFFERS_ALLOWED, NotExact.MODEL_DIGEST_DIFFERS_ALLOWED.value))
    if new.model.engine_args != rec.model.engine_args:
        reasons.append(Reason(NotExact.ENGINE_ARGS_DIFFER, NotExact.ENGINE_ARGS_DIFFER.value))
    if new.scorer != rec.scorer:
        reasons.append(Reason(NotExact.SCORER_DIFFERS, NotExact.SCORER_DIFFERS.value))
    compared, differing = compare_samples(original.outputs, result.run_dir / OUTPUTS_NAME)
    metrics = compare_metrics(rec, new, rule)
    verdict = decide(metrics, differing, reasons, new.status == "complete")
    env = opts.environment
    doc = ReproductionRecord(
        id=new_id(),
        time=now(),
        package=EventPackage(name=rec.package.name, version=rec.package.version, seal=rec.package.seal),
        refers_to=Reference(kind="run", sha256=original.entry.record.sha256, run_id=rec.run_id, seq=original.entry.seq),
        summary=ReproductionSummary(
            verdict=verdict, exact=verdict is ReproductionVerdict.EXACT, original_run=rec.run_id, rerun=new.run_id,
            samples=compared, differing_samples=len(differing),
            metrics_out_of_tolerance=sum(1 for m in metrics if not m.within_tolerance),
        ),
        details=ReproductionDetails(
            original=OriginalRun(run_id=rec.run_id, record_sha256=original.entry.record.sha256,
                                 seq=original.entry.seq, outputs_content_sha256=rec.outputs.content_sha256,
                                 signer=original.signer),
            rerun=RerunInfo(run_id=new.run_id, record_sha256=result.entry.record.sha256, seq=result.entry.seq,
                            outputs_content_sha256=new.outputs.content_sha256),
            environment=EnvironmentInfo(
                mode=env.mode if env else "current", lockfile_sha256=env.sha256 if env else None,
                matched_before=env.matches if env else None, rerun_lockfile_matches=new.lockfile.matches),
            model=ModelCheck(recorded_digest=rec.model.digest, used_digest=new.model.digest,
                             allow_mismatch=opts.allow_model_mismatch),
            not_exact_because=tuple(r.message for r in reasons),
            tolerance=ToleranceInfo(rule=rule.rule, tolerance=rule.tolerance,
                                    stated_in_package=pkg.manifest.reproduction is not None,
                                    description=rule.describe()),
            first_differing_samples=tuple(differing[:20]),
            metrics=tuple(metrics),
        ),
    )
    signed = sign_event(doc, {}, KeySigner(opts.config_dir))
    entry = original.dossier.add_event(doc, signed.bundle, {}, checkpoint=KeySigner(opts.config_dir))
    return ReproductionResult(
        verdict=verdict, original=original, rerun=new, rerun_entry=result.entry, entry=entry,
        document=doc, samples_compared=compared, differing=differing, metrics=metrics, rule=rule, reasons=reasons,
        key_created=signed.key_created or result.key_created,
    )
