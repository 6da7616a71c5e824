"""``harness suite run``: every package x model pair of a suite, then one signed suite record.

Composed from the run's own parts, not a second runner: each package's plan is made once
(seal, data, subset; a broken package stops the suite before any model loads), each
model's backend is opened once and shared by every package that uses it (a launched vLLM
server is started once per model and run seed, not per package), and each pair is an
ordinary :func:`harness.run.execute` with its own journal, signed record and dossier
entry. Pairs run on up to ``jobs`` threads. In-process (transformers) models generate
one request at a time under one process-wide lock: torch's random generator and thread
pool are process-global, so two in-process generations at once could change each
other's sampled answers; servers (an endpoint, vLLM) answer concurrently, so their
pairs overlap. With ``executor="ray"`` each pair's model and scorer run on a Ray worker
instead and stream finished samples back; the driver still journals, signs and appends
(:mod:`harness.suite.ray_executor`).

Resume: :mod:`harness.suite.state` lists finished pairs; a pair committed just before a
crash is found again in its dossier (a complete run of the same seal, model, parameters,
seed, subset and scorer made since the suite started); a pair interrupted mid-generation
continues from its run's journal. When every pair has a complete run, the gate is decided
(:mod:`harness.suite.gate`) and the suite record is signed and written under
``dossiers/_suites/<suite>/<suite id>/``.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from harness._internal.clock import now
from harness._internal.files import atomic_write
from harness._internal.hashing import sha256_bytes
from harness._internal.settings import dossiers_dir as default_dossiers_dir
from harness.backends.base import (
    DEFAULT_MODEL_DIR,
    Backend,
    GenerationRequest,
    GenerationResult,
    display_path,
)
from harness.backends.load import open_backend
from harness.dossier.log import Dossier, Entry
from harness.environment import harness_info, platform_info
from harness.errors import HarnessError, RunInterruptedError
from harness.plan import RunPlan
from harness.record import RunRecord
from harness.run import apply_seeds, execute
from harness.scoring.base import Scorer
from harness.scoring.factory import make_scorer
from harness.signing.signers import KeySigner, Signer, SigstoreSigner, preflight
from harness.suite.file import LoadedSuite, ModelSpec, PackageSpec, SuiteFileError, load_suite
from harness.suite.gate import GatedRun, SuiteReview, decide_suite, suite_review
from harness.suite.models import open_model
from harness.suite.record import (
    PREDICATE_TYPE_SUITE,
    SUITE_BUNDLE_NAME,
    SUITE_RECORD_NAME,
    SuiteExecutor,
    SuiteFileRef,
    SuiteModel,
    SuitePackage,
    SuiteRecord,
    SuiteRun,
    parse_suite_record,
    suites_root,
)
from harness.suite.state import PairDone, SuiteState, SuiteWork

if TYPE_CHECKING:
    from harness.suite.ray_executor import RayPairs


class PairFailure(enum.StrEnum):
    """Why a pair did not finish (exit 3); the next ``harness suite run`` tries it again."""

    BACKEND = "backend"
    """The model could not be loaded, launched or reached."""
    INCOMPLETE = "incomplete"
    """The run finished, signed, with samples that got no answer (status incomplete)."""
    ERROR = "error"
    """Another error stopped the pair's run (its message says which)."""


@dataclass
class SuiteOptions:
    """What ``harness suite run`` can be told (what :func:`run_suite` takes)."""

    suite: Path
    mirror: Path | None = None
    """The data mirror for packages whose entry names none (``--mirror``)."""
    jobs: int = 1
    dossiers_dir: Path | None = None
    config_dir: Path | None = None
    sign: Literal["key", "sigstore"] = "key"
    sigstore_staging: bool = False
    vllm_python: str | None = None
    executor: Literal["local", "ray"] = "local"
    """Where pairs generate: threads of this process, or Ray workers (docs/scale-out.md)."""
    ray_address: str | None = None
    """The Ray cluster to use; None starts a local instance with ``jobs`` CPUs."""
    log: Callable[[str], None] = field(default=lambda message: None)
    """Called with one line per pair as it starts and finishes (the command prints them on stderr)."""

    def signer(self) -> Signer:
        if self.sign == "sigstore":
            return SigstoreSigner(staging=self.sigstore_staging)
        return KeySigner(self.config_dir)


@dataclass
class PairOutcome:
    """One pair: its committed run, or why it has none."""

    package: str
    model: str
    entry: Entry | None = None
    record: RunRecord | None = None
    reused: bool = False
    """Finished by an earlier attempt of this suite run (not run again)."""
    failure: PairFailure | None = None
    message: str | None = None
    seconds: float = 0.0

    @property
    def finished(self) -> bool:
        return self.failure is None and self.record is not None and self.record.status == "complete"


@dataclass
class SuiteResult:
    """A suite run: every pair's outcome and, when all finished, the signed suite record."""

    suite: LoadedSuite
    suite_id: str
    outcomes: list[PairOutcome]
    headline: dict[str, str]
    record: SuiteRecord | None = None
    record_path: Path | None = None
    notices: list[str] = field(default_factory=list)
    key_created: Path | None = None
    review: SuiteReview | None = None
    """Where review is required: each run's review state (docs/review.md)."""

    @property
    def unfinished(self) -> list[PairOutcome]:
        return [o for o in self.outcomes if not o.finished]

    @property
    def exit_code(self) -> int:
        """0 the gate passes, 7 it fails, 3 a pair could not finish (no suite record then),
        8 a run must be reviewed first (``harness suite gate`` decides after review)."""
        if self.unfinished or self.record is None:
            return 3
        gate_exit = 7 if self.record.gate.verdict == "FAIL" else 0
        return gate_exit if self.review is None else self.review.exit_code(gate_exit)


_IN_PROCESS_LOCK = threading.Lock()
"""Held around every in-process generation of a suite (see the module docstring)."""


class _Shared(Backend):
    """A pair's view of a shared backend: not closed by the pair, serialized when in-process,
    and stopped at the next request once the suite is interrupted."""

    def __init__(self, inner: Backend, lock: threading.Lock | None, stop: threading.Event) -> None:
        self.inner, self.identity, self.concurrency = inner, inner.identity, inner.concurrency
        self.accelerator = inner.accelerator
        self._lock, self._stop = lock, stop

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if self._stop.is_set():
            raise KeyboardInterrupt
        if self._lock is None:
            return self.inner.generate(request)
        with self._lock:
            return self.inner.generate(request)

    def generate_many(self, requests: Sequence[GenerationRequest],
                      on_result: Callable[[int, GenerationResult], None]) -> None:
        def each(i: int, res: GenerationResult) -> None:
            on_result(i, res)
            if self._stop.is_set():
                raise KeyboardInterrupt

        if self._lock is None:
            self.inner.generate_many(requests, each)
        else:  # an in-process backend never reaches here (concurrency 1), but keep the rule
            for i, r in enumerate(requests):
                each(i, self.generate(r))


class _Backends:
    """Each model's backend, opened on first use and kept until the suite ends.

    Keyed by model, and for a launched vLLM server also by run seed: the server's
    ``--seed`` is part of the engine arguments every run records, and a reproduction
    launches it with the run's seed, so packages share a server exactly when they share
    a seed (every shipped package uses the same one). A model that fails to open fails
    every pair that needs it, with the same message, without trying again.
    """

    def __init__(self, loaded: LoadedSuite, opts: SuiteOptions, stack: ExitStack) -> None:
        self._loaded, self._opts, self._stack = loaded, opts, stack
        self._open: dict[tuple[str, int | None], Backend | HarnessError] = {}
        self._locks: dict[tuple[str, int | None], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, spec: ModelSpec, seed: int) -> Backend:
        key = (spec.name, seed if spec.serve else None)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._open:
                try:
                    self._open[key] = self._start(spec, seed)
                except HarnessError as e:
                    self._open[key] = e
            got = self._open[key]
        if isinstance(got, HarnessError):
            raise got
        return got

    def _start(self, spec: ModelSpec, seed: int) -> Backend:
        path = str(self._loaded.resolve(spec.path)) if spec.path else None
        cm = open_model(spec, path, seed, self._opts.vllm_python, open_backend)  # looked up here: tests replace it
        with self._guard:  # ExitStack is not thread-safe; closing happens on the main thread at the end
            return self._stack.enter_context(cm)


@dataclass
class _Context:
    loaded: LoadedSuite
    opts: SuiteOptions
    signer: Signer
    dossiers: Path
    work: SuiteWork
    backends: _Backends
    stop: threading.Event
    state_lock: threading.Lock
    state: SuiteState
    remote: RayPairs | None = None
    """The Ray executor's workers (None: the local executor)."""
    same_run: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)
    """One lock per package and model identity: two model entries that are the same model
    (one served model behind two endpoints) make the same run configuration, whose journal
    only one run may hold at a time, so such pairs take turns."""

    def turn(self, package: str, digest: str) -> threading.Lock:
        with self.state_lock:
            return self.same_run.setdefault((package, digest), threading.Lock())


# ---------------------------------------------------------------------------- planning


def plan_packages(loaded: LoadedSuite, mirror: Path | None) -> dict[str, tuple[PackageSpec, RunPlan]]:
    """Every package's plan (seal checked, data verified, subset drawn) before any model
    loads, and the suite's references to packages and metrics checked against them."""
    plans: dict[str, tuple[PackageSpec, RunPlan]] = {}
    for spec in loaded.file.packages:
        plan = RunPlan.from_package(
            loaded.package_ref(spec), mirror=loaded.resolve(spec.mirror) if spec.mirror else mirror, seed=spec.seed,
            max_tokens=spec.max_tokens, temperature=spec.temperature, top_p=spec.top_p, limit=spec.limit,
            filters=spec.filter)
        m = plan.package.manifest
        if m.name != spec.key:
            raise SuiteFileError(f"{loaded.path}: package entry {spec.name!r} holds package {m.name!r}",
                                 hint="a folder's name must be its package's name (the suite refers to packages by name)")
        if spec.headline and spec.headline not in m.metrics:
            raise SuiteFileError(f"{loaded.path}: headline {spec.headline!r} is not a metric of {m.name} "
                                 f"({', '.join(m.metrics)})", hint="choose one of the package's metrics")
        plans[m.name] = (spec, plan)
    for i, c in enumerate(loaded.file.gate.criteria):
        targets = c.packages or tuple(plans)
        computing = [p for p in targets if c.metric in plans[p][1].package.manifest.metrics]
        if c.packages and len(computing) < len(c.packages):
            missing = sorted(set(c.packages) - set(computing))
            raise SuiteFileError(f"{loaded.path}: gate.criteria[{i}] ({c.describe()}) names {', '.join(missing)}, "
                                 f"which do not compute {c.metric}", hint="name packages that compute the metric")
        if not computing:
            raise SuiteFileError(f"{loaded.path}: gate.criteria[{i}] ({c.describe()}): no package of the suite "
                                 f"computes {c.metric}", hint="check the metric's name against the packages' metrics")
    return plans


def headline_of(spec: PackageSpec, plan: RunPlan) -> str:
    return spec.headline or plan.package.manifest.metrics[0]


# ---------------------------------------------------------------------------- one pair


def _committed_since(dossier: Dossier, plan: RunPlan, record_digest_of: Callable[[RunRecord], bool],
                     since: str, taken: set[str]) -> tuple[Entry, RunRecord] | None:
    """A complete run of this pair committed since the suite started that the state does
    not list yet (the process died between committing it and noting it)."""
    seal = plan.package.seal.seal if plan.package.seal else None
    for entry in reversed(dossier.runs()):
        if entry.time < since:
            continue  # concurrent commits may be slightly out of time order: look at every entry
        if entry.seal != seal or entry.status != "complete" or entry.run_id in taken:
            continue
        record = dossier.record_of(entry)
        if (record.generation == plan.generation and record.seeds.run == plan.run_seed
                and record.overrides == plan.overrides and record.outputs.samples == len(plan.samples)
                and record_digest_of(record)):
            return entry, record
    return None


def run_pair(ctx: _Context, spec: PackageSpec, model: ModelSpec, plan: RunPlan) -> PairOutcome:
    """One pair: the shared backend, the package's scorer, an ordinary run; its failure as a value."""
    name = plan.package.manifest.name
    start = time.perf_counter()
    out = PairOutcome(package=name, model=model.name)
    if ctx.stop.is_set():
        return dataclasses.replace(out, failure=PairFailure.ERROR, message="not started: the suite was interrupted")
    ctx.opts.log(f"start  {name} x {model.name}")
    try:
        apply_seeds(plan.seeds)
        backend: Backend
        scorer: Scorer
        if ctx.remote is not None:  # model and scorer on a Ray worker; this process journals, signs, appends
            backend, scorer = ctx.remote.open_pair(spec, model, plan, ctx.stop)
        else:
            backend = ctx.backends.get(model, plan.run_seed)
    except HarnessError as e:
        return _failed(ctx, out, PairFailure.BACKEND, e, start)
    try:
        if ctx.remote is None:
            judge_model = str(ctx.loaded.resolve(spec.judge_model)) if spec.judge_model else None
            scorer = make_scorer(plan.package.manifest.scorer, plan.package.root, judge_model=judge_model,
                                 judge_endpoint=spec.judge_endpoint, threads=model.threads)
    except HarnessError as e:
        return _failed(ctx, out, PairFailure.ERROR, e, start)
    try:
        dossier = Dossier.for_package(name, ctx.dossiers)
        identity, described = backend.identity, scorer.describe()
        found = None
        if ctx.state.resumes:  # only a resumed suite can have committed a run it did not note
            with ctx.state_lock:
                found = _committed_since(dossier, plan,
                                         lambda r: r.model.digest == identity.digest and r.scorer == described,
                                         ctx.state.started_at, {p.run_id for p in ctx.state.done})
        if found is not None:
            entry, record = found
            ctx.opts.log(f"found  {name} x {model.name}: run {entry.run_id} (entry {entry.seq}) had been committed")
        else:
            pair_plan = dataclasses.replace(plan, started_at=now(), started=time.perf_counter())
            lock = _IN_PROCESS_LOCK if model.in_process and ctx.remote is None else None
            shared = backend if ctx.remote is not None else _Shared(backend, lock, ctx.stop)
            with ctx.turn(name, identity.digest):
                result = execute(pair_plan, shared, scorer, dossiers_dir=ctx.dossiers,
                                 signer=ctx.signer, resume="auto", progress=False)
            entry, record = result.entry, result.record
    except RunInterruptedError:
        raise
    except HarnessError as e:
        return _failed(ctx, out, PairFailure.ERROR, e, start)
    finally:
        scorer.close()
        if ctx.remote is not None:
            backend.close()  # the pair's worker: its CPUs or GPUs go to the next pair
    out = dataclasses.replace(out, entry=entry, record=record, seconds=round(time.perf_counter() - start, 3))
    if record.status != "complete":
        out = dataclasses.replace(out, failure=PairFailure.INCOMPLETE,
                                  message=f"{record.outputs.errors} of {record.outputs.samples} samples got no answer "
                                  f"(run {record.run_id}, entry {entry.seq}, recorded as incomplete)")
        ctx.opts.log(f"FAILED {name} x {model.name}: {out.message}")
        return out
    with ctx.state_lock:
        ctx.state = ctx.work.add(ctx.state, PairDone(package=name, model=model.name, run_id=record.run_id,
                                                     dossier=dossier.root.name, seq=entry.seq,
                                                     record_sha256=entry.record.sha256))
    ctx.opts.log(f"done   {name} x {model.name}: run {record.run_id}, entry {entry.seq} ({out.seconds:.1f} s)")
    return out


def _failed(ctx: _Context, out: PairOutcome, kind: PairFailure, e: HarnessError, start: float) -> PairOutcome:
    message = e.message + (f" ({e.hint})" if e.hint else "")
    ctx.opts.log(f"FAILED {out.package} x {out.model}: {message}")
    return dataclasses.replace(out, failure=kind, message=message, seconds=round(time.perf_counter() - start, 3))


def _reused(dossiers: Path, done: PairDone) -> PairOutcome | None:
    """A pair the state lists, if its dossier entry still names the same record (else None: run again)."""
    dossier = Dossier.for_package(done.dossier, dossiers)
    entry = next((e for e in dossier.runs() if e.seq == done.seq), None)
    if entry is None or entry.run_id != done.run_id or entry.record.sha256 != done.record_sha256:
        return None
    record = dossier.record_of(entry)
    if sha256_bytes(record.to_bytes()) != done.record_sha256:
        return None
    return PairOutcome(package=done.package, model=done.model, entry=entry, record=record, reused=True)


# ---------------------------------------------------------------------------- the suite


def run_suite(opts: SuiteOptions) -> SuiteResult:
    """Run every pair not finished yet, then (all finished) decide the gate and sign the suite record."""
    if opts.jobs < 1:
        raise SuiteFileError(f"--jobs must be at least 1 (got {opts.jobs})", hint="e.g. --jobs 4")
    if opts.executor == "ray":  # before anything is planned or written: a clear error without Ray
        from harness.suite.ray_executor import import_ray

        import_ray()
    loaded = load_suite(opts.suite)
    signer = opts.signer()
    preflight(signer)
    plans = plan_packages(loaded, opts.mirror)
    dossiers = opts.dossiers_dir or default_dossiers_dir()
    work = SuiteWork(suites_root(dossiers), loaded.file.name, loaded.file.config_digest())
    work.lock()
    try:
        state = work.start(loaded.file.name)
        existing = _existing_record(dossiers, loaded, state)
        headline = {name: headline_of(spec, plan) for name, (spec, plan) in plans.items()}
        notices = [n for _, (_, plan) in plans.items() for n in plan.notices]
        notices += work.notices
        if existing is not None:  # written before a crash; only the state was left to remove
            work.finish()
            kept = [_reused(dossiers, PairDone(package=r.package, model=r.model, run_id=r.run_id, dossier=r.dossier,
                                               seq=r.seq, record_sha256=r.record_sha256)) for r in existing[0].runs]
            return _reviewed(SuiteResult(suite=loaded, suite_id=state.suite_id, outcomes=[o for o in kept if o is not None],
                                         headline=headline, record=existing[0], record_path=existing[1],
                                         notices=notices), dossiers)
        with ExitStack() as stack:
            ctx = _Context(loaded=loaded, opts=opts, signer=signer, dossiers=dossiers, work=work,
                           backends=_Backends(loaded, opts, stack), stop=threading.Event(),
                           state_lock=threading.Lock(), state=state, remote=_remote(loaded, opts, stack))
            outcomes = _run_pairs(ctx, plans)
        result = SuiteResult(suite=loaded, suite_id=state.suite_id, outcomes=outcomes, headline=headline,
                             notices=notices)
        if not result.unfinished:
            record, path, created = write_suite_record(ctx, plans, outcomes, headline)
            work.finish()
            result.record, result.record_path, result.key_created = record, path, created
        return _reviewed(result, dossiers)
    finally:
        work.unlock()


def _reviewed(result: SuiteResult, dossiers: Path) -> SuiteResult:
    """Attach the runs' review state where the suite or a package requires review: a fresh
    suite then answers "awaiting review" (exit 8) until people label and approve its runs."""
    if result.record is None or result.unfinished:
        return result
    gated = [GatedRun(o.package, o.model, o.record) for o in result.outcomes if o.record is not None]
    review = suite_review(result.suite.file.gate, gated, dossiers)
    if review.statuses:
        result.review = review
        result.notices.extend(review.notes)
    return result


def _remote(loaded: LoadedSuite, opts: SuiteOptions, stack: ExitStack) -> RayPairs | None:
    """The Ray executor, connected (Ray imported only now), or None for the local one."""
    if opts.executor != "ray":
        return None
    from harness.suite.ray_executor import RayPairs

    return RayPairs(loaded, opts.vllm_python, opts.log).connect(opts.ray_address, opts.jobs, stack)


def _run_pairs(ctx: _Context, plans: dict[str, tuple[PackageSpec, RunPlan]]) -> list[PairOutcome]:
    """Each pair in suite order: reused from the state, or run (on ``jobs`` threads)."""
    todo: list[tuple[int, PackageSpec, ModelSpec, RunPlan]] = []
    results: dict[int, PairOutcome] = {}
    index = 0
    for name, (spec, plan) in plans.items():
        for model in ctx.loaded.file.models:
            done = ctx.state.finished(name, model.name)
            reused = _reused(ctx.dossiers, done) if done is not None else None
            if reused is not None:
                results[index] = reused
                ctx.opts.log(f"kept   {name} x {model.name}: run {done.run_id} (entry {done.seq}) finished earlier")  # type: ignore[union-attr]
            else:
                if done is not None:
                    with ctx.state_lock:
                        ctx.state = ctx.work.drop(ctx.state, name, model.name)
                todo.append((index, spec, model, plan))
            index += 1
    if ctx.opts.jobs == 1 or len(todo) <= 1:
        for i, spec, model, plan in todo:  # on this thread: Ctrl-C reaches the run, which keeps its journal
            try:
                results[i] = run_pair(ctx, spec, model, plan)
            except RunInterruptedError as e:
                raise _interrupted(ctx, e) from None
    else:
        with ThreadPoolExecutor(max_workers=ctx.opts.jobs, thread_name_prefix="suite") as pool:
            futures = {pool.submit(run_pair, ctx, spec, model, plan): i for i, spec, model, plan in todo}
            try:
                wait(futures, return_when=FIRST_EXCEPTION)  # all done, or the first that raised
            except KeyboardInterrupt:
                ctx.stop.set()  # running pairs stop at their next request, journals kept
                for f in futures:
                    f.cancel()
                wait(futures)
                raise _interrupted(ctx, None) from None
            first = next((f.exception() for f in futures if not f.cancelled() and f.exception()), None)
            if first is not None:
                ctx.stop.set()
                for f in futures:
                    f.cancel()
                wait(futures)
                if isinstance(first, RunInterruptedError):
                    raise _interrupted(ctx, first) from None
                raise first
            for f, i in futures.items():
                results[i] = f.result()
    return [results[i] for i in sorted(results)]


def _interrupted(ctx: _Context, e: RunInterruptedError | None) -> RunInterruptedError:
    with ctx.state_lock:
        done = len(ctx.state.done)
    total = len(ctx.loaded.file.packages) * len(ctx.loaded.file.models)
    where = f" ({e.message})" if e is not None else ""
    return RunInterruptedError(
        f"suite {ctx.loaded.file.name} interrupted: {done} of {total} pairs are finished and kept{where}",
        hint=f"run `harness suite run {ctx.loaded.path}` again to continue: finished pairs are not repeated, "
        "an interrupted pair resumes from its journal")


# ---------------------------------------------------------------------------- the record


def _existing_record(dossiers: Path, loaded: LoadedSuite, state: SuiteState) -> tuple[SuiteRecord, Path] | None:
    path = suites_root(dossiers) / loaded.file.name / state.suite_id / SUITE_RECORD_NAME
    if path.is_file() and (path.parent / SUITE_BUNDLE_NAME).is_file():
        return parse_suite_record(path), path
    return None


def _suite_model(spec: ModelSpec, loaded: LoadedSuite, outcomes: list[PairOutcome]) -> SuiteModel:
    digest = next((o.record.model.digest for o in outcomes if o.model == spec.name and o.record), None)
    path = None
    if spec.backend == "transformers" or spec.serve:  # as the suite file gives it: no path of this machine
        path = spec.path or display_path(DEFAULT_MODEL_DIR)
    return SuiteModel(name=spec.name, backend=spec.backend, serve=spec.serve, path=path, endpoint=spec.endpoint,
                      served_model=spec.model, api_key_env=spec.api_key_env if spec.endpoint else None,
                      engine_args=spec.engine_args, digest=digest)


def build_suite_record(ctx: _Context, plans: dict[str, tuple[PackageSpec, RunPlan]], outcomes: list[PairOutcome],
                       headline: dict[str, str]) -> SuiteRecord:
    """The suite record over every pair's committed run (all of them complete)."""
    gated = [GatedRun(o.package, o.model, o.record) for o in outcomes if o.record is not None]
    gate, per_pair = decide_suite(ctx.loaded.file.gate, gated)
    runs = []
    for o in outcomes:
        assert o.record is not None and o.entry is not None
        metric = headline[o.package]
        values = tuple(m for m in o.record.metrics
                       if m.metric == metric and (m.group == "overall" or m.group.startswith("language:")))
        runs.append(SuiteRun(package=o.package, model=o.model, run_id=o.record.run_id,
                             record_sha256=o.entry.record.sha256, dossier=o.package, seq=o.entry.seq,
                             status=o.record.status, subset=o.record.is_subset, samples=o.record.outputs.samples,
                             gate=per_pair[(o.package, o.model)], headline=values))
    packages = []
    for name, (_, plan) in plans.items():
        seal = plan.package.seal
        assert seal is not None
        packages.append(SuitePackage(name=name, version=plan.package.manifest.version, seal=seal.seal,
                                     overrides=plan.overrides, headline=headline[name]))
    f = ctx.loaded
    started = ctx.state.started_at
    return SuiteRecord(
        suite_id=ctx.state.suite_id, name=f.file.name, description=f.file.description, started_at=started,
        finished_at=now(), duration_s=round(_seconds_since(started), 3),
        suite_file=SuiteFileRef(name=f.path.name, sha256=f.sha256, schema_version=f.file.schema_version),
        harness=harness_info(), platform=platform_info(),
        models=tuple(_suite_model(m, f, outcomes) for m in f.file.models), packages=tuple(packages),
        runs=tuple(runs), gate=gate, jobs=ctx.opts.jobs, resumes=ctx.state.resumes,
        executor=SuiteExecutor(kind="ray", ray_version=ctx.remote.version) if ctx.remote else SuiteExecutor(kind="local"),
    )


def _seconds_since(stamp: str) -> float:
    import datetime as dt

    started = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (dt.datetime.now(dt.UTC) - started).total_seconds()


def write_suite_record(ctx: _Context, plans: dict[str, tuple[PackageSpec, RunPlan]], outcomes: list[PairOutcome],
                       headline: dict[str, str]) -> tuple[SuiteRecord, Path, Path | None]:
    """Sign the suite record (subject ``suite.json``, predicate type suite-record/v1) and
    write both files (the bundle last: a folder with a record and no bundle is unfinished)."""
    record = build_suite_record(ctx, plans, outcomes, headline)
    data = record.to_bytes()
    signed = ctx.signer.sign({SUITE_RECORD_NAME: sha256_bytes(data)}, PREDICATE_TYPE_SUITE, record.predicate())
    folder = suites_root(ctx.dossiers) / record.name / record.suite_id
    atomic_write(folder / SUITE_RECORD_NAME, data)
    atomic_write(folder / SUITE_BUNDLE_NAME, signed.bundle)
    return record, folder / SUITE_RECORD_NAME, signed.key_created
