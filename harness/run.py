"""Running a sealed package: seal check, data, generation, scoring, record, signature, dossier.

Everything random is derived from the one run seed, so "the same run" is fully
described by the package seal, the model digest, the parameters and that seed.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness._internal.crashpoint import crashpoint
from harness._internal.hashing import sha256_bytes, sha256_file
from harness._internal.seeds import SEED_RULE, derive_seed
from harness.backends.base import DEFAULT_MODEL_DIR, Backend, GenerationRequest, GenerationResult
from harness.backends.load import load_backend
from harness.backends.vllm import VLLMServer
from harness.diff import DiffReport, diff_runs
from harness.dossier.log import Dossier, Entry
from harness.environment import environment_match, harness_info, platform_info
from harness.errors import HarnessError, JournalError, RunInterruptedError, SealError
from harness.journal import (
    Journal,
    RunState,
    WorkDir,
    commit_run,
    config_key,
    missing,
    read_journal,
    recover_commit,
)
from harness.packages.data import Sample, load_samples, resolve_sources
from harness.packages.package import Package, resolve_package
from harness.packages.seal import check_package, summarize
from harness.record import OUTPUTS_NAME, RunRecord, content_digest
from harness.scoring.factory import make_scorer
from harness.scoring.metrics import (
    BaselineVerdict,
    MetricValue,
    Scored,
    check_baselines,
    compare_languages,
    compute_metrics,
)
from harness.signing.keys import load_or_create_key
from harness.signing.sign import PREDICATE_TYPE_RUN, sign_statement, sign_statement_keyless


def seed_plan(run_seed: int) -> dict[str, Any]:
    return {
        "run": run_seed,
        "python": derive_seed(run_seed, "python"),
        "numpy": derive_seed(run_seed, "numpy"),
        "torch": derive_seed(run_seed, "torch"),
        "order": derive_seed(run_seed, "order"),
        "sample_rule": SEED_RULE.replace("{purpose}", "sample:{id}"),
    }


def apply_seeds(plan: dict[str, Any]) -> None:
    """Seed the global generators of what is loaded: numpy and torch only once a backend
    imported them (it is applied again after the backend loads), so a run against a
    server does not import numpy before its first request just to seed it."""
    import sys

    random.seed(plan["python"])
    if "numpy" in sys.modules:
        import numpy  # not sys.modules[...]: this waits for an import another thread is running

        numpy.random.seed(plan["numpy"])
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(plan["torch"])


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


@dataclass
class RunOptions:
    package: str | Path
    model: str | None = None
    backend: str = "transformers"
    mirror: Path | None = None
    seed: int | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    threads: int = 1
    endpoint: str | None = None
    serve: str | None = None
    engine_args: tuple[str, ...] = ()
    concurrency: int = 16
    api_key_env: str = "OPENAI_API_KEY"
    deterministic: bool = False
    vllm_python: str | None = None
    sign: str = "key"
    sigstore_staging: bool = False
    judge_model: str | None = None
    judge_endpoint: str | None = None
    dossiers_dir: Path | None = None
    config_dir: Path | None = None
    limit: int | None = None
    progress: bool = True
    resume: Literal["auto", "require", "fresh"] = "auto"
    purpose: str = "run"
    """Part of the journal's configuration key, so a reproduction never continues (or is
    continued by) an unfinished ordinary run of the same configuration."""
    """auto: continue an unfinished run of the same configuration if there is one;
    require: fail unless there is one; fresh: discard it and start over."""


@dataclass
class RunResult:
    record: RunRecord
    entry: Entry
    dossier: Dossier
    metrics: list[MetricValue]
    baselines: list[BaselineVerdict]
    previous: DiffReport | None
    key_created: Path | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        return self.dossier.run_dir(self.record.run_id)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


def generate_all(
    backend: Backend, samples: Sequence[Sample], gen: dict[str, Any], run_seed: int,
    scorer: Any, journal: Journal, progress: bool,
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
            sample_id=s.id, prompt=s.prompt, max_tokens=gen["max_tokens"], temperature=gen["temperature"],
            top_p=gen["top_p"], stop=tuple(gen["stop"]), seed=derive_seed(run_seed, f"sample:{s.id}"),
        )

    def line_for(s: Sample, req: GenerationRequest, res: GenerationResult | HarnessError) -> dict[str, Any]:
        if isinstance(res, HarnessError):
            text, finish, err, attempts, timing = "", "error", res.message, 1, {}
        else:
            text, finish, err, attempts = res.text, res.finish_reason, res.error, res.attempts
            timing = {"latency_s": round(res.latency_s, 4), "completion_tokens": res.completion_tokens}
        judge: dict[str, Any] | None = None
        if err:
            verdict = "error"
        else:
            j = scorer.assess(text, s.language, prompt=s.prompt)
            verdict = j.verdict
            if getattr(scorer, "kind", "refusal") == "judge":
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
            "correct": None if verdict in ("error", "unparsed") else (verdict == "refusal") == (s.expected == "refuse"),
            "error": err,
            "attempts": attempts,
            "timing": timing,
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
    concurrency = int(getattr(backend, "concurrency", 1) or 1)

    def keep(line: dict[str, Any]) -> None:
        journal.append(line)
        lines.append(line)
        tick()

    try:
        if concurrency <= 1:
            for s in order:
                keep(one(s))
        elif hasattr(backend, "generate_many") and getattr(scorer, "kind", "refusal") != "judge":
            # One event loop keeps `concurrency` requests in flight; each answer is scored
            # and journaled on this thread as it arrives (see OpenAIBackend.generate_many).
            # A judge scorer calls a model per answer: it keeps the thread pool below, so
            # judgements run concurrently instead of stalling the loop.
            reqs = [request_for(s) for s in order]
            backend.generate_many(reqs, lambda i, res: keep(line_for(order[i], reqs[i], res)))
        else:
            from concurrent.futures import ThreadPoolExecutor, as_completed

            pool = ThreadPoolExecutor(max_workers=concurrency)
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


def run_package(opts: RunOptions) -> RunResult:
    """One complete run: returns the record, the dossier entry and the diff to the previous run."""
    started = _now()
    t0 = time.perf_counter()
    pkg = check_package(resolve_package(opts.package))
    m = pkg.manifest
    notices = [m.usage_notice] if m.usage_notice else []
    env = environment_match(pkg.lockfile_path())
    sources = resolve_sources(pkg, opts.mirror)
    samples = load_samples(pkg, sources)
    counted = summarize(samples)
    if pkg.seal is not None and counted != pkg.seal.summary:
        raise SealError(
            f"package {m.name}: the data holds {counted.samples} samples in {list(counted.languages)}, "
            f"the seal says {pkg.seal.summary.samples} in {list(pkg.seal.summary.languages)}",
            hint="the harness reads this data differently from when it was sealed; reseal after checking why",
        )
    if opts.limit:
        samples = sorted(samples, key=lambda s: s.id)[: opts.limit]
    # Built before any generation so a judge whose pinned identity does not match stops the run early.
    scorer = make_scorer(m.scorer, pkg.root, judge_model=opts.judge_model, judge_endpoint=opts.judge_endpoint,
                         threads=opts.threads)

    overrides: dict[str, Any] = {}
    run_seed = m.seed
    if opts.seed is not None and opts.seed != m.seed:
        run_seed = overrides["seed"] = opts.seed
    gen = {"max_tokens": m.generation.max_tokens, "temperature": m.generation.temperature,
           "top_p": m.generation.top_p, "stop": list(m.generation.stop)}
    for key in ("max_tokens", "temperature", "top_p"):
        val = getattr(opts, key)
        if val is not None and val != gen[key]:
            gen[key] = overrides[key] = val
    if opts.limit:
        overrides["limit"] = opts.limit
    plan = seed_plan(run_seed)
    apply_seeds(plan)

    server = None
    if opts.serve:
        server = VLLMServer(opts.model or str(DEFAULT_MODEL_DIR), seed=run_seed, extra_args=opts.engine_args,
                            deterministic=opts.deterministic, python=opts.vllm_python)
        server.start()
    try:
        if server is not None:
            backend = load_backend("openai", server.served_name, endpoint=server.base_url, concurrency=opts.concurrency,
                                   engine_args=server.engine_args(), local_path=server.local_path)
        elif opts.endpoint:
            backend = load_backend("openai", opts.model, endpoint=opts.endpoint, concurrency=opts.concurrency,
                                   api_key_env=opts.api_key_env)
        else:
            backend = load_backend(opts.backend, opts.model, threads=opts.threads)
        return _finish_run(opts, pkg, samples, sources, scorer, env, run_seed, gen, overrides, plan, backend,
                           started, t0, notices)
    finally:
        if server is not None:
            server.stop()


def _finish_run(
    opts: RunOptions, pkg: Package, samples: list[Sample], sources: list[Any], scorer: Any, env: dict[str, Any],
    run_seed: int, gen: dict[str, Any], overrides: dict[str, Any], plan: dict[str, Any], backend: Backend,
    started: str, t0: float, notices: list[str],
) -> RunResult:
    m = pkg.manifest
    apply_seeds(plan)
    identity = backend.identity
    dossier = Dossier.for_package(m.name, opts.dossiers_dir)
    key = config_key({
        "package": m.name, "seal": pkg.seal.seal if pkg.seal else None,
        "model": {"backend": identity.backend, "name": identity.name, "digest": identity.digest},
        "generation": gen, "seed": run_seed, "limit": opts.limit, "scorer": scorer.describe(),
        "samples": len(samples), "purpose": opts.purpose,
    })
    work = WorkDir(dossier.root / ".work", key)
    try:
        work.lock()
        try:
            return _run_in(work, opts, pkg, dossier, samples, sources, scorer, env, run_seed, gen, overrides, plan,
                           backend, started, t0, notices)
        finally:
            work.unlock()
    finally:
        backend.close()
        if hasattr(scorer, "close"):
            scorer.close()


def _run_in(
    work: WorkDir, opts: RunOptions, pkg: Package, dossier: Dossier, samples: list[Sample], sources: list[Any],
    scorer: Any, env: dict[str, Any], run_seed: int, gen: dict[str, Any], overrides: dict[str, Any],
    plan: dict[str, Any], backend: Backend, started: str, t0: float, notices: list[str],
) -> RunResult:
    """Generate what the journal lacks, then record, sign and commit; every step survives a kill."""
    m = pkg.manifest
    identity = backend.identity
    committed = recover_commit(work, dossier)
    if committed is not None and opts.resume != "fresh":
        notices.append(f"run {committed.run_id} had finished before the interruption; it is entry {committed.seq}")
        return _result_of(dossier, committed, notices)
    state = work.read_state()
    if opts.resume == "fresh" and (state is not None or work.path.exists()):
        work.discard()
        state = None
    if state is None and opts.resume == "require":
        raise JournalError(
            f"there is no unfinished run of {m.name} with this model and configuration to resume",
            hint="run without --resume to start one",
        )
    done: list[dict[str, Any]] = []
    if state is None:
        run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
        work.discard()  # a stale folder without run.json held nothing that counted
        work.path.mkdir(parents=True, exist_ok=True)
        state = RunState(run_id=run_id, config_key=work.key, started_at=started, package=m.name, samples=len(samples))
        work.write_state(state)
    else:
        done = read_journal(work.journal)
        state = state.model_copy(update={"resumes": [*state.resumes, {"at": started, "samples_done": len(done)}]})
        work.write_state(state)
        notices.append(f"resuming run {state.run_id}: {len(done)} of {len(samples)} samples were already done")
    todo = missing(samples, done)
    _preload("numpy", "sigstore.dsse", "sigstore_models.bundle.v1")
    with Journal(work.journal) as journal:
        try:
            lines = done + generate_all(backend, todo, gen, run_seed, scorer, journal, opts.progress)
        except KeyboardInterrupt:
            journal.close()
            saved = len(read_journal(work.journal))
            raise RunInterruptedError(
                f"interrupted: {saved} of {len(samples)} samples are saved in the journal of run {state.run_id}",
                hint="run the same command again to resume (or add --fresh to start over)",
            ) from None
    order_of = {s.id: i for i, s in enumerate(samples)}
    if len(lines) != len(samples) or {x["id"] for x in lines} != set(order_of):
        raise JournalError(  # pragma: no cover - guarded by missing()
            f"the journal of run {state.run_id} does not hold exactly the package's samples",
            hint="start over with --fresh",
        )

    scored = [Scored(x["id"], x["language"], x["category"], x["expected"], x["verdict"]) for x in lines]
    metrics = compute_metrics(scored, m.metrics, m.bootstrap, run_seed, overall=not (m.compare and not m.compare.overall))
    comparisons = []
    if m.compare:
        pair_of = {s.id: s.pair_id or s.id for s in samples}
        comparisons = compare_languages(scored, [pair_of[x.id] for x in scored], m.compare.reference_language,
                                        m.compare.metrics, m.bootstrap, run_seed)
    verdicts = check_baselines(m.baselines, metrics, [identity.name, identity.digest])
    errors = sum(1 for x in lines if x["verdict"] == "error")
    unparsed = sum(1 for x in lines if x["verdict"] == "unparsed")
    prev_seq, prev_digest = dossier.head()
    out_path = work.journal

    record = RunRecord(
        run_id=state.run_id,
        status="complete" if errors == 0 else "incomplete",
        started_at=state.started_at,
        finished_at=_now(),
        duration_s=round(time.perf_counter() - t0, 3),
        package={"name": m.name, "version": m.version, "seal": pkg.seal.seal,  # type: ignore[union-attr]
                 "manifest_sha256": pkg.seal.manifest_sha256, "license": m.license},  # type: ignore[union-attr]
        data=[{"id": s.id, "sha256": s.sha256, "size": s.size} for s in sources],
        lockfile=env,
        harness=harness_info(),
        platform=platform_info(),
        model=identity.as_dict(),
        generation=gen,
        seeds=plan,
        overrides=overrides,
        scorer=scorer.describe(),
        outputs={"path": OUTPUTS_NAME, "sha256": sha256_file(out_path), "content_sha256": content_digest(lines),
                 "samples": len(lines), "errors": errors, "unparsed": unparsed},
        metrics=[mv.as_dict() for mv in metrics],
        comparisons=[c.as_dict() for c in comparisons],
        baselines=[v.as_dict() for v in verdicts],
        previous_entry=prev_digest if prev_seq else None,
        resumes=state.resumes,
    )
    subjects = {"record.json": sha256_bytes(record.to_bytes()), OUTPUTS_NAME: record.outputs.sha256}
    summary = {"run_id": state.run_id, "package": m.name, "version": m.version, "seal": record.package.seal,
               "model_digest": identity.digest, "outputs_content_sha256": record.outputs.content_sha256}
    key_created = None
    crashpoint("before-sign")
    if opts.sign == "sigstore":
        bundle = sign_statement_keyless(subjects, PREDICATE_TYPE_RUN, summary, staging=opts.sigstore_staging)
    else:
        key = load_or_create_key(opts.config_dir)
        key_created = key.path if key.created else None
        bundle = sign_statement(subjects, PREDICATE_TYPE_RUN, summary, key)
    crashpoint("signed")
    previous = None
    prev_entry = dossier.last_run() if prev_seq else None  # the head may be a review, reproduction, ...
    if prev_entry is not None:
        prev_record = dossier.record_of(prev_entry)
        previous = diff_runs(prev_record, record, dossier.root / prev_entry.outputs.path, out_path)
    entry = commit_run(work, dossier, record, bundle)
    return RunResult(
        record=record, entry=entry, dossier=dossier, metrics=metrics, baselines=verdicts, previous=previous,
        key_created=key_created, notices=notices,
    )


def _result_of(dossier: Dossier, entry: Entry, notices: list[str]) -> RunResult:
    """The result of a run that is already in the dossier (a resume found nothing left to do)."""
    record = dossier.record_of(entry)
    return RunResult(
        record=record, entry=entry, dossier=dossier,
        metrics=[MetricValue(**d) for d in record.metrics],
        baselines=[BaselineVerdict(**d) for d in record.baselines],
        previous=None, notices=notices,
    )
