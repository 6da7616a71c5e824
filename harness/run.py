"""Executing a run plan: generation, scoring, the record, its signature, the dossier entry.

:func:`execute` takes a :class:`~harness.plan.RunPlan` and the backend and scorer to run
it with, so a notebook, a test or ``harness reproduce`` can pass its own;
:func:`run_package` is the one call ``harness run`` makes (plan from a package, backend
and scorer from the options). Every finished sample is journaled at once and every
commit step survives a kill, so an interrupted run resumes without losing or
repeating work (:mod:`harness.journal`).
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness._internal.clock import new_id, now
from harness._internal.crashpoint import crashpoint
from harness._internal.hashing import sha256_bytes, sha256_file
from harness._internal.seeds import derive_seed
from harness.backends.base import Backend, GenerationRequest, GenerationResult
from harness.backends.load import open_backend
from harness.diff import DiffReport, diff_runs
from harness.dossier.log import Dossier, Entry
from harness.environment import harness_info, platform_info
from harness.errors import HarnessError, JournalError, RunInterruptedError
from harness.journal import (
    Journal,
    RunState,
    WorkDir,
    commit_run,
    config_key,
    missing,
    recover_commit,
)
from harness.packages.data import Sample
from harness.plan import RunPlan
from harness.record import (
    OUTPUTS_NAME,
    PREDICATE_TYPE_RUN,
    DataRef,
    GenerationParams,
    OutputsRef,
    PackageRef,
    Resume,
    RunRecord,
    SeedPlan,
    content_digest,
)
from harness.scoring.base import Scorer
from harness.scoring.behaviours import is_correct, uncertain_fields, uncertain_tally
from harness.scoring.factory import make_scorer
from harness.scoring.metrics import (
    BaselineVerdict,
    Comparison,
    MetricValue,
    Scored,
    check_baselines,
    compare_languages,
    compute_metrics,
)
from harness.signing.signers import KeySigner, Signer, SigstoreSigner, preflight

ResumeMode = Literal["auto", "require", "fresh"]
"""auto: continue an unfinished run of the same configuration if there is one;
require: fail unless there is one; fresh: discard it and start over."""


@dataclass
class RunOptions:
    """Everything ``harness run`` can be told, as one object (what :func:`run_package` takes)."""

    package: str | Path
    model: str | None = None
    backend: str = "transformers"
    mirror: Path | None = None
    seed: int | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    threads: int = 1
    endpoint: str | tuple[str, ...] | None = None
    """An OpenAI-compatible server, or several replicas of one (one run spread over them)."""
    device: str = "auto"
    """transformers: ``auto`` (a GPU when torch sees one), ``cpu`` or ``cuda``; recorded as resolved."""
    dtype: str = "auto"
    """transformers: ``auto`` (bfloat16 on a GPU that has it, float32 on the CPU) or a torch dtype."""
    batch_size: int = 1
    """transformers: prompts generated at once (left padded); 1 keeps answers independent of batching."""
    serve: str | None = None
    engine_args: tuple[str, ...] = ()
    concurrency: int = 16
    api_key_env: str = "OPENAI_API_KEY"
    deterministic: bool = False
    vllm_python: str | None = None
    sign: Literal["key", "sigstore"] = "key"
    sigstore_staging: bool = False
    judge_model: str | None = None
    judge_endpoint: str | None = None
    dossiers_dir: Path | None = None
    config_dir: Path | None = None
    limit: int | None = None
    """A stratified subset of about this many samples (drawn from the run seed)."""
    sample_ids: Path | tuple[str, ...] | None = None
    """Only these ids (a file of one id per line, or the ids)."""
    filters: tuple[str, ...] = ()
    """``FIELD=VALUE`` terms (language, category, expected, id); all must match."""
    progress: bool = True
    resume: ResumeMode = "auto"
    purpose: str = "run"
    """Part of the journal's configuration key (see :data:`harness.plan.PURPOSES`)."""

    def signer(self) -> Signer:
        """The signer ``sign`` names."""
        if self.sign == "sigstore":
            return SigstoreSigner(staging=self.sigstore_staging)
        return KeySigner(self.config_dir)


@dataclass
class RunResult:
    """What a run left: its record, its dossier entry, and the diff to the previous run."""

    record: RunRecord
    entry: Entry
    dossier: Dossier
    previous: DiffReport | None
    key_created: Path | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> list[MetricValue]:
        return self.record.metrics

    @property
    def baselines(self) -> list[BaselineVerdict]:
        return self.record.baselines

    @property
    def run_dir(self) -> Path:
        return self.dossier.run_dir(self.record.run_id)


def run_package(opts: RunOptions) -> RunResult:
    """One complete run of a package: the plan from ``opts``, then :func:`run_plan`."""
    plan = RunPlan.from_package(opts.package, mirror=opts.mirror, seed=opts.seed, max_tokens=opts.max_tokens,
                                temperature=opts.temperature, top_p=opts.top_p, limit=opts.limit,
                                sample_ids=opts.sample_ids, filters=opts.filters, purpose=opts.purpose)
    return run_plan(plan, opts)


def run_plan(plan: RunPlan, opts: RunOptions) -> RunResult:
    """Execute ``plan`` with the scorer its package names and the backend ``opts`` describe
    (``opts.package`` and the plan fields of ``opts`` are not read: the plan has them).

    What can fail cheaply is checked first: the signer (an identity token, a readable
    key), then whichever of scorer and backend is cheaper to open. A judge's pinned
    identity is checked before a local model loads; an endpoint's reachability (one
    GET of its model list) before a judge loads.
    """
    m = plan.package.manifest
    signer = opts.signer()
    preflight(signer)  # no token, an expired one or an unreadable key: fail before any model is loaded

    def backend() -> Any:
        apply_seeds(plan.seeds)
        return open_backend(opts.backend, opts.model, seed=plan.run_seed, threads=opts.threads,
                            endpoint=opts.endpoint, serve=opts.serve, engine_args=opts.engine_args,
                            concurrency=opts.concurrency, api_key_env=opts.api_key_env,
                            deterministic=opts.deterministic, vllm_python=opts.vllm_python,
                            device=opts.device, dtype=opts.dtype, batch_size=opts.batch_size)

    def scorer() -> Scorer:
        return make_scorer(m.scorer, plan.package.root, judge_model=opts.judge_model,
                           judge_endpoint=opts.judge_endpoint, threads=opts.threads)

    with ExitStack() as stack:
        if opts.endpoint:  # an unreachable server fails before a judge model is loaded
            model = stack.enter_context(backend())
            score = scorer()
            stack.callback(score.close)
        else:  # a judge that does not match its pin fails before the model under test loads
            score = scorer()
            stack.callback(score.close)
            model = stack.enter_context(backend())
        return execute(plan, model, score, dossiers_dir=opts.dossiers_dir, signer=signer,
                       resume=opts.resume, progress=opts.progress)


def execute(
    plan: RunPlan, backend: Backend, scorer: Scorer, *, dossiers_dir: Path | None = None,
    signer: Signer | None = None, resume: ResumeMode = "auto", progress: bool = False,
) -> RunResult:
    """Run ``plan`` with ``backend`` and ``scorer``; sign the record and append it to the
    package's dossier. The caller keeps ownership of the backend and scorer (nothing is closed)."""
    apply_seeds(plan.seeds)
    identity = backend.identity
    m = plan.package.manifest
    dossier = Dossier.for_package(m.name, dossiers_dir)
    key = config_key({
        "package": m.name, "seal": plan.package.seal.seal if plan.package.seal else None,
        "model": {"backend": identity.backend, "name": identity.name, "digest": identity.digest},
        "generation": plan.generation.model_dump(mode="json"), "seed": plan.run_seed, "limit": plan.limit,
        "subset": _ids_key(plan) if plan.is_subset else None,
        "scorer": scorer.describe().model_dump(mode="json"), "samples": len(plan.samples),
        "purpose": plan.purpose,
    })
    work = WorkDir(dossier.root / ".work", key)
    work.lock()
    try:
        return _run_in(work, plan, dossier, backend, scorer, signer or KeySigner(), resume, progress)
    finally:
        work.unlock()


def _run_in(
    work: WorkDir, plan: RunPlan, dossier: Dossier, backend: Backend, scorer: Scorer, signer: Signer,
    resume: ResumeMode, progress: bool,
) -> RunResult:
    """Generate what the journal lacks, then record, sign and commit; every step survives a kill."""
    m = plan.package.manifest
    samples = plan.samples
    notices = list(plan.notices)
    identity = backend.identity
    committed = recover_commit(work, dossier)
    if committed is not None and resume != "fresh":
        notices.append(f"run {committed.run_id} had finished before the interruption; it is entry {committed.seq}")
        return _result_of(dossier, committed, notices)
    state = work.read_state()
    if resume == "fresh" and (state is not None or work.path.exists()):
        work.discard()
        state = None
    if state is None and resume == "require":
        raise JournalError(
            f"there is no unfinished run of {m.name} with this model and configuration to resume"
            + "".join(f"\n  {n}" for n in work.notices),
            hint="run without --resume to start one",
        )
    done: list[dict[str, Any]] = []
    if state is None:
        work.discard()  # a stale folder without run.json held nothing that counted
        work.path.mkdir(parents=True, exist_ok=True)
        state = RunState(run_id=new_id(), config_key=work.key, started_at=plan.started_at, package=m.name,
                         samples=len(samples))
        work.write_state(state)
    else:
        done = work.read_journal(state)
        state = state.model_copy(update={
            "resumes": [*state.resumes, Resume(at=plan.started_at, samples_done=len(done))]})
        work.write_state(state)
        notices.append(f"resuming run {state.run_id}: {len(done)} of {len(samples)} samples were already done")
    notices.extend(work.notices)  # work state this machine did not write: set aside, reported, never resumed
    todo = missing(samples, done)
    _preload("numpy", "harness.signing.sign", "sigstore.dsse", "sigstore_models.bundle.v1")
    with work.open_journal(state) as journal:
        try:
            lines = done + generate_all(backend, todo, plan.generation, plan.run_seed, scorer, journal, progress)
        except KeyboardInterrupt:
            journal.close()
            saved = len(work.read_journal(state))
            raise RunInterruptedError(
                f"interrupted: {saved} of {len(samples)} samples are saved in the journal of run {state.run_id}",
                hint="run the same command again to resume (or add --fresh to start over)",
            ) from None
    if len(lines) != len(samples) or {x["id"] for x in lines} != {s.id for s in samples}:
        raise JournalError(  # pragma: no cover - guarded by missing()
            f"the journal of run {state.run_id} does not hold exactly the package's samples",
            hint="start over with --fresh",
        )

    scored = [Scored(x["id"], x["language"], x["category"], x["expected"], x["verdict"]) for x in lines]
    confidence = m.bootstrap.confidence
    metrics = compute_metrics(scored, m.metrics, confidence, overall=not (m.compare and not m.compare.overall))
    comparisons: list[Comparison] = []
    if m.compare:
        pair_of = {s.id: s.pair_id or s.id for s in samples}
        comparisons = compare_languages(scored, [pair_of[x.id] for x in scored], m.compare.reference_language,
                                        m.compare.metrics, confidence)
    verdicts = check_baselines(m.baselines, metrics, [identity.name, identity.digest], m.gate_rule, confidence)
    errors = sum(1 for x in lines if x["verdict"] == "error")
    unparsed = sum(1 for x in lines if x["verdict"] == "unparsed")
    prev_seq, prev_digest = dossier.head()
    out_path = work.journal
    seal = plan.package.seal
    assert seal is not None  # a plan's package is checked against its seal

    record = RunRecord(
        run_id=state.run_id,
        status="complete" if errors == 0 else "incomplete",
        started_at=state.started_at,
        finished_at=now(),
        duration_s=round(time.perf_counter() - plan.started, 3),
        package=PackageRef(name=m.name, version=m.version, seal=seal.seal, manifest_sha256=seal.manifest_sha256,
                           license=m.license),
        data=[DataRef(id=s.id, sha256=s.sha256, size=s.size) for s in plan.sources],
        lockfile=plan.environment,
        harness=harness_info(),
        platform=platform_info(backend.accelerator),
        model=identity,
        generation=plan.generation,
        seeds=plan.seeds,
        overrides=plan.overrides,
        scorer=scorer.describe(),
        outputs=OutputsRef(path=OUTPUTS_NAME, sha256=sha256_file(out_path), content_sha256=content_digest(lines),
                           samples=len(lines), errors=errors, unparsed=unparsed,
                           **uncertain_tally(lines, marks=scorer.marks_uncertainty)),
        metrics=metrics,
        comparisons=comparisons,
        baselines=verdicts,
        previous_entry=prev_digest if prev_seq else None,
        resumes=state.resumes,
        replicas=backend.replica_report(),
    )
    subjects = {"record.json": sha256_bytes(record.to_bytes()), OUTPUTS_NAME: record.outputs.sha256}
    summary = {"run_id": state.run_id, "package": m.name, "version": m.version, "seal": record.package.seal,
               "model_digest": identity.digest, "outputs_content_sha256": record.outputs.content_sha256}
    crashpoint("before-sign")
    signed = signer.sign(subjects, PREDICATE_TYPE_RUN, summary)
    crashpoint("signed")
    previous = None
    prev_entry = dossier.last_run() if prev_seq else None  # the head may be a review, reproduction, ...
    if prev_entry is not None:
        prev_record = dossier.record_of(prev_entry)
        previous = diff_runs(prev_record, record, dossier.root / prev_entry.outputs.path, out_path)
    entry, record = commit_run(work, dossier, record, signed.bundle, signer)
    return RunResult(record=record, entry=entry, dossier=dossier, previous=previous, key_created=signed.key_created,
                     notices=notices)


def _ids_key(plan: RunPlan) -> str:
    """The digest of a subset's ids: two subsets of one size never share a journal."""
    return sha256_bytes("".join(f"{s.id}\n" for s in sorted(plan.samples, key=lambda s: s.id)).encode())


def generate_all(
    backend: Backend, samples: Sequence[Sample], gen: GenerationParams, run_seed: int,
    scorer: Scorer, journal: Journal, progress: bool,
) -> list[dict[str, Any]]:
    """Generate and score every sample, appending each line to the journal as it is done.

    Backends that declare ``concurrency`` > 1 (HTTP endpoints) get that many requests in
    flight; lines are then written in completion order, which the content digest ignores.
    The order of requests is fixed by the run seed over the samples given, so a resumed
    run asks for what is left in the same relative order.
    """
    order = list(samples)
    random.Random(derive_seed(run_seed, "order")).shuffle(order)

    def request_for(s: Sample) -> GenerationRequest:
        return GenerationRequest(
            sample_id=s.id, prompt=s.prompt, max_tokens=gen.max_tokens, temperature=gen.temperature,
            top_p=gen.top_p, stop=gen.stop, seed=derive_seed(run_seed, f"sample:{s.id}"),
        )

    def line_for(s: Sample, req: GenerationRequest, res: GenerationResult | HarnessError) -> dict[str, Any]:
        err: str | None
        if isinstance(res, HarnessError):
            text, finish, err, attempts, timing = "", "error", res.message, 1, {}
        else:
            text, finish, err, attempts = res.text, res.finish_reason, res.error, res.attempts
            timing = {"latency_s": round(res.latency_s, 4), "completion_tokens": res.completion_tokens}
            if res.replica is not None:  # which replica answered: volatile, outside the content digest
                timing["replica"] = res.replica
        judge: dict[str, Any] | None = None
        marks: dict[str, Any] = {}
        if err:
            verdict = "error"
        else:
            j = scorer.score(text, s.language, prompt=s.prompt, finish_reason=finish)
            verdict, marks = j.verdict, uncertain_fields(j.uncertain)  # none for a certain verdict
            if scorer.kind == "judge":
                judge = {"raw": j.raw, "error": f"judge: {j.error}" if j.error else None}
        line = {
            "id": s.id,
            "language": s.language,
            "category": s.category,
            "expected": s.expected,
            "prompt_sha256": sha256_bytes(s.prompt.encode()),
            "seed": req.seed,
            "response": text,
            "finish_reason": finish,
            "verdict": verdict,
            "correct": is_correct(verdict, s.expected),
            "error": err,
            "attempts": attempts,
            "timing": timing,
            **marks,
        }
        if judge is not None:  # only judge packages: refusal-scored lines keep their exact shape
            line["judge"] = judge
        return line

    def one(s: Sample) -> dict[str, Any]:
        req = request_for(s)
        try:
            res: GenerationResult | HarnessError = backend.generate(req)
        except HarnessError as e:
            res = e
        return line_for(s, req, res)

    lines: list[dict[str, Any]] = []
    bar, tick = _progress(progress, len(order))

    def keep(line: dict[str, Any]) -> None:
        journal.append(line)
        lines.append(line)
        tick()

    try:
        if backend.concurrency <= 1:
            for s in order:
                keep(one(s))
        elif not scorer.calls_model:
            # The backend keeps `concurrency` requests in flight; each answer is scored and
            # journaled on this thread as it arrives (see OpenAIBackend.generate_many).
            # A scorer that calls a model per answer (a judge) takes the thread pool below,
            # so judgements run concurrently instead of stalling the stream of answers.
            reqs = [request_for(s) for s in order]
            backend.generate_many(reqs, lambda i, res: keep(line_for(order[i], reqs[i], res)))
        else:
            from concurrent.futures import ThreadPoolExecutor, as_completed

            pool = ThreadPoolExecutor(max_workers=backend.concurrency)
            try:
                for fut in as_completed([pool.submit(one, s) for s in order]):
                    keep(fut.result())
            except BaseException:
                # Ctrl-C or a crash: drop queued requests instead of waiting for all of them.
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown()
    finally:
        if bar is not None:
            bar.stop()
    return lines


def _result_of(dossier: Dossier, entry: Entry, notices: list[str]) -> RunResult:
    """The result of a run that is already in the dossier (a resume found nothing left to do)."""
    return RunResult(record=dossier.record_of(entry), entry=entry, dossier=dossier, previous=None, notices=notices)


def apply_seeds(seeds: SeedPlan) -> None:
    """Seed the global generators of what is loaded: numpy and torch only once a backend
    imported them (it is applied again after the backend loads), so a run against a
    server does not import numpy before its first request just to seed it."""
    random.seed(seeds.python)
    if "numpy" in sys.modules:
        import numpy  # not sys.modules[...]: this waits for an import another thread is running

        numpy.random.seed(seeds.numpy)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seeds.torch)


def _preload(*modules: str) -> None:
    """Import what the end of a run needs (numpy for CIs, the signing stack) on a helper
    thread while generation waits on the model: free with a real model, about half a
    second off the end of a run otherwise."""
    import importlib
    import threading

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the main thread imports it again and reports
                pass

    threading.Thread(target=load, name="preload", daemon=True).start()


def _progress(enabled: bool, total: int) -> tuple[Any, Callable[[], None]]:
    if not enabled:
        return None, lambda: None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    )
    task = progress.add_task("gen", total=total)
    progress.start()
    return progress, lambda: progress.advance(task)
