"""``harness suite run --executor ray``: each package x model pair generates on a Ray worker.

Why this shape (docs/scale-out.md says more):

- **Only the driver writes.** A pair is still an ordinary :func:`harness.run.execute`
  in the driver process, with its journal, its signed record and its dossier entry. What
  moves to Ray is the model and the scorer: the driver hands :func:`execute` a
  :class:`RemoteBackend` and a :class:`ReplayedScorer`. The backend sends the requests
  the journal still lacks to the pair's worker, an actor that opens the model exactly as
  the local executor does (:func:`harness.suite.models.open_model`), generates, scores
  each answer with the package's scorer, and streams each finished sample back (a Ray
  streaming generator, ``num_returns="streaming"``). The driver journals each one as it
  arrives, through the same code that builds a line locally; the scorer it was given
  only hands back the worker's judgement. The worker never receives the dossiers
  folder, the journal or the signing key.
- **A dead worker resumes from the journal.** The actor is created with
  ``max_restarts`` (Ray restarts its process and reruns its constructor) and
  ``max_task_retries=0``. Ray's own retry of a streaming generator replays it from the
  start and drops the items it already reported *by position*; answers that arrive in
  completion order (several requests in flight) would then be dropped or doubled, so
  the stream is not retried by Ray. Instead, when the stream fails because the actor
  died, the driver asks the restarted actor for exactly the requests it has not yet
  received: nothing repeated, nothing lost.
- **Same results as the local executor.** Requests are built by the driver's
  :func:`harness.run.generate_all` (same order, same per-sample seeds), the worker's
  backend and scorer are the ones the local executor would open, and the journal's
  configuration key (model identity, scorer, seeds, ...) is the same, so the outputs'
  content digest is the same, and a suite interrupted under one executor resumes
  under the other.

Ray is imported only here and only when this executor is chosen; without it the
command fails with a :class:`~harness.errors.HarnessError` (exit 2) naming the extra.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._internal.crashpoint import crashpoint
from harness.backends.base import Backend, GenerationRequest, GenerationResult, ModelIdentity
from harness.environment import AcceleratorInfo
from harness.errors import BackendError, HarnessError
from harness.packages.manifest import JudgeSpec, RefusalSpec
from harness.plan import RunPlan
from harness.record import SeedPlan
from harness.scoring.base import Judgement, JudgeScorerInfo, RefusalScorerInfo, Scorer
from harness.scoring.factory import make_scorer
from harness.suite.file import LoadedSuite, ModelSpec, PackageSpec
from harness.suite.models import open_model

RAY_HINT = "install the optional Ray dependencies: `uv sync --extra ray` (or `pip install 'llm-safety-harness[ray]'`)"
MAX_RESTARTS = 3
"""How often Ray restarts a pair's worker that died; after that the pair fails (exit 3)
and the next ``harness suite run`` continues it from its journal."""
BATCH = 64
FLUSH_S = 0.5
"""A worker streams its answers in batches: at most BATCH answers, sent once FLUSH_S
seconds have passed since the last batch (so a slow model's answers go one by one, a fast
one's together). Each streamed object costs a report from the worker and a ``ray.get``
in the driver, of the order of the rest of a sample's handling when the model costs
nothing (benchmarks/scale_out.py, BENCHMARKS.md); a batch pays it once. A killed worker
loses at most its unsent batch, which is asked for again."""
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024
"""A Ray instance this executor starts streams small lines only: keep its shared memory small."""


def import_ray() -> Any:
    """Ray, or a HarnessError (exit 2) saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise HarnessError(f"--executor ray needs Ray, which is not installed ({e})", hint=RAY_HINT) from None
    return ray


def crash_point_of(package: str, model: str) -> str:
    """The crash point a pair's worker passes after each answer, in its first process only
    (``HARNESS_CRASH_AT=ray-worker/PACKAGE/MODEL#N`` kills it at its N-th answer; tests)."""
    return f"ray-worker/{package}/{model}"


def gpus_of(spec: ModelSpec) -> int:
    """GPUs a pair needs: a launched vLLM server takes its tensor-parallel size (default 1), an
    in-process model with ``device = "cuda"`` one GPU (``auto`` takes one only where offered)."""
    if not spec.serve:
        return 1 if spec.device == "cuda" else 0
    args = " ".join(spec.engine_args)
    m = re.search(r"(?:--tensor-parallel-size|-tp)[ =](\d+)", args)
    return int(m.group(1)) if m else 1


# ---------------------------------------------------------------------------- the worker


@dataclass(frozen=True)
class WorkerSpec:
    """What a pair's worker needs to open its model and scorer: no path of the dossiers,
    no journal, no key."""

    package: str
    model: ModelSpec
    model_path: str | None
    seeds: SeedPlan
    vllm_python: str | None
    scorer_spec: RefusalSpec | JudgeSpec
    package_root: str
    judge_model: str | None
    judge_endpoint: str | None


@dataclass(frozen=True)
class ScorerFacts:
    """What the driver's :class:`ReplayedScorer` must say exactly as the worker's scorer would."""

    info: RefusalScorerInfo | JudgeScorerInfo
    kind: str
    behaviours: tuple[str, ...]
    marks_uncertainty: bool


@dataclass(frozen=True)
class Answer:
    """One finished sample as the worker streams it: the index of its request in the
    driver's call, the model's answer, and the scorer's judgement (None when it erred)."""

    index: int
    result: GenerationResult
    judgement: Judgement | None


class PairWorker:
    """The body of a pair's Ray actor: a model and a scorer, opened in the constructor
    (again after a restart), and :meth:`answer`, a streaming generator."""

    def __init__(self, spec: WorkerSpec) -> None:
        from harness.run import apply_seeds

        self._spec, self._stack = spec, ExitStack()
        self._failure: tuple[str, str | None] | None = None
        try:
            apply_seeds(spec.seeds)
            self._backend = self._stack.enter_context(open_model(spec.model, spec.model_path, spec.seeds.run,
                                                                 spec.vllm_python))
            apply_seeds(spec.seeds)
            self._scorer = make_scorer(spec.scorer_spec, Path(spec.package_root), judge_model=spec.judge_model,
                                       judge_endpoint=spec.judge_endpoint, threads=spec.model.threads)
            self._stack.callback(self._scorer.close)
        except HarnessError as e:  # reported by describe(), not as an actor that cannot start
            self._failure = (e.message, e.hint)
            self._stack.close()

    def describe(self) -> tuple[ModelIdentity, ScorerFacts, AcceleratorInfo | None] | tuple[str, str | None]:
        """The model's identity, what the driver needs of the scorer, and the accelerator this
        worker generates on (for the record: the worker's, not the driver's), or why they
        could not be opened."""
        if self._failure is not None:
            return self._failure
        s = self._scorer
        facts = ScorerFacts(s.describe(), s.kind, tuple(s.behaviours), s.marks_uncertainty)
        return self._backend.identity, facts, self._backend.accelerator

    def answer(self, items: list[tuple[int, GenerationRequest, str]]) -> Iterator[list[Answer]]:
        """Generate and score each ``(index, request, language)``, yielding the answers in
        batches as they are done (see :data:`BATCH`)."""
        import ray

        first_life = not ray.get_runtime_context().was_current_actor_reconstructed
        point = crash_point_of(self._spec.package, self._spec.model.name)
        asked = {i: (r, lang) for i, r, lang in items}
        batch: list[Answer] = []
        sent = time.monotonic()
        for i, result in self._generate([(i, r) for i, r, _ in items]):
            judgement = None
            if not result.error:
                request, language = asked[i]
                judgement = self._scorer.score(result.text, language, prompt=request.prompt,
                                               finish_reason=result.finish_reason)
            if first_life:
                crashpoint(point)
            batch.append(Answer(i, result, judgement))
            if len(batch) >= BATCH or time.monotonic() - sent >= FLUSH_S:
                yield batch
                batch, sent = [], time.monotonic()
        if batch:
            yield batch

    def _generate(self, items: list[tuple[int, GenerationRequest]]) -> Iterator[tuple[int, GenerationResult]]:
        """The backend's answers as they complete: one at a time for an in-process model,
        ``concurrency`` in flight (on a helper thread) for a server."""
        backend = self._backend
        if backend.concurrency <= 1:
            for i, request in items:
                try:
                    yield i, backend.generate(request)
                except HarnessError as e:  # as harness.run.generate_all records it: an error line
                    yield i, GenerationResult(text="", finish_reason="error", completion_tokens=0, latency_s=0.0,
                                              attempts=1, error=e.message)
            return
        done: queue.Queue[tuple[int, GenerationResult] | BaseException | None] = queue.Queue()

        def run() -> None:
            try:
                backend.generate_many([r for _, r in items], lambda k, res: done.put((items[k][0], res)))
                done.put(None)
            except BaseException as e:  # noqa: BLE001 - handed to the generator, which raises it
                done.put(e)

        threading.Thread(target=run, name="generate", daemon=True).start()
        while (got := done.get()) is not None:
            if isinstance(got, BaseException):
                raise got
            yield got


# ---------------------------------------------------------------------------- the driver's side


class ReplayedScorer(Scorer):
    """The driver's scorer for a pair that runs on Ray: it describes the worker's scorer and
    hands back, for each answer, the judgement the worker made (it calls no model, so
    :func:`harness.run.generate_all` takes the streaming path even for a judge)."""

    kind = "refusal"
    calls_model = False

    def __init__(self, facts: ScorerFacts) -> None:
        self._facts = facts
        self.behaviours = facts.behaviours
        self._next: Judgement | None = None

    @property
    def marks_uncertainty(self) -> bool:
        return self._facts.marks_uncertainty

    def hand(self, judgement: Judgement | None) -> None:
        self._next = judgement

    def assess(self, response: str, language: str, *, prompt: str | None = None,
               finish_reason: str | None = None) -> Judgement:
        if self._next is None:  # pragma: no cover - generate_all assesses only answers without error
            raise BackendError("the Ray worker sent an answer without its judgement")
        got, self._next = self._next, None
        return got

    def describe(self) -> RefusalScorerInfo | JudgeScorerInfo:
        return self._facts.info


class ReplayedJudge(ReplayedScorer):
    """:class:`ReplayedScorer` for a package scored by an LLM judge (the line keeps the judge's raw answer)."""

    kind = "judge"


class RemoteBackend(Backend):
    """The driver's backend for a pair that runs on Ray: each call of :meth:`generate_many`
    streams the requests' answers from the pair's actor, and after the actor died (and Ray
    restarted it) asks again for those not received yet."""

    concurrency = 64
    """More than one, so :func:`harness.run.generate_all` hands over every request at once."""

    def __init__(self, ray: Any, actor: Any, identity: ModelIdentity, accelerator: AcceleratorInfo | None,
                 scorer: ReplayedScorer, languages: dict[str, str], stop: threading.Event, label: str,
                 log: Callable[[str], None]) -> None:
        self.identity, self.accelerator = identity, accelerator
        self._ray, self._actor, self._scorer, self._languages = ray, actor, scorer, languages
        self._stop, self._label, self._log = stop, label, log
        self.restarts = 0

    def generate(self, request: GenerationRequest) -> GenerationResult:
        got: list[GenerationResult] = []
        self.generate_many([request], lambda _, res: got.append(res))
        return got[0]

    def generate_many(self, requests: Sequence[GenerationRequest],
                      on_result: Callable[[int, GenerationResult], None]) -> None:
        ray = self._ray
        pending = dict(enumerate(requests))
        while pending:
            items = [(i, r, self._languages[r.sample_id]) for i, r in pending.items()]
            stream = self._actor.answer.options(num_returns="streaming").remote(items)
            try:
                while True:
                    wait_for(ray, stream, self._stop)
                    try:
                        ref = next(stream)
                    except StopIteration:
                        break
                    batch: list[Answer] = ray.get(ref)
                    for answer in batch:
                        if answer.index not in pending:
                            continue  # never journal a sample twice
                        del pending[answer.index]
                        self._scorer.hand(answer.judgement)
                        on_result(answer.index, answer.result)
                        self._scorer.hand(None)
                    if self._stop.is_set():
                        raise KeyboardInterrupt
            except ray.exceptions.RayActorError as e:
                self.restarts += 1
                if self.restarts > MAX_RESTARTS:
                    raise BackendError(f"the Ray worker of {self._label} died {self.restarts} times; "
                                       f"{len(pending)} of its samples are not answered ({_first_line(e)})",
                                       hint="the answers received are journaled: run `harness suite run` "
                                       "again to continue") from None
                self._log(f"retry  {self._label}: its Ray worker died ({_first_line(e)}); asking the restarted "
                          f"worker for the {len(pending)} samples not received")
            except ray.exceptions.RayTaskError as e:
                raise BackendError(f"the Ray worker of {self._label} failed: {_first_line(e)}",
                                   hint="the answers received are journaled: run `harness suite run` "
                                   "again to continue") from None

    def close(self) -> None:
        self._ray.kill(self._actor, no_restart=True)


def wait_for(ray: Any, waitable: Any, stop: threading.Event) -> None:
    """Block until ``waitable`` (an object or a stream's next item) is ready, looking at
    ``stop`` every second: a suite interrupted (or failed) elsewhere must not leave this
    thread waiting on a worker forever."""
    while not ray.wait([waitable], timeout=1.0)[0]:
        if stop.is_set():
            raise KeyboardInterrupt


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[-1] if text else type(e).__name__


class RayPairs:
    """The Ray side of a suite run: connects to (or starts) Ray and opens each pair's worker."""

    def __init__(self, loaded: LoadedSuite, vllm_python: str | None, log: Callable[[str], None]) -> None:
        self._loaded, self._vllm_python, self._log = loaded, vllm_python, log
        self._ray = import_ray()
        self.started = False

    def connect(self, address: str | None, cpus: int, stack: ExitStack) -> RayPairs:
        """Connect to the cluster at ``address``, or start a local instance with ``cpus`` CPUs
        (shut down when the suite ends); a driver already connected stays as it is."""
        ray = self._ray
        if ray.is_initialized():
            return self
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                         object_store_memory=LOCAL_OBJECT_STORE_BYTES)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise BackendError(f"could not start or reach {where}: {_first_line(e)}",
                               hint="check --ray-address (ray://HOST:10001 or HOST:6379), or leave it out "
                               "to start a local instance") from None
        self.started = True
        stack.callback(ray.shutdown)
        return self

    @property
    def version(self) -> str:
        return str(self._ray.__version__)

    def open_pair(self, spec: PackageSpec, model: ModelSpec, plan: RunPlan,
                  stop: threading.Event) -> tuple[RemoteBackend, ReplayedScorer]:
        """Start the pair's actor (CPUs or GPUs as the model needs) and wait until its model
        and scorer are open; a model that cannot be opened is a BackendError, as locally."""
        ray = self._ray
        name = plan.package.manifest.name
        path = str(self._loaded.resolve(model.path)) if model.path else None
        wspec = WorkerSpec(
            package=name, model=model, model_path=path, seeds=plan.seeds, vllm_python=self._vllm_python,
            scorer_spec=plan.package.manifest.scorer, package_root=str(plan.package.root),
            judge_model=str(self._loaded.resolve(spec.judge_model)) if spec.judge_model else None,
            judge_endpoint=spec.judge_endpoint)
        gpus, cpus = gpus_of(model), model.threads if model.in_process else 1
        if self.started:  # a local instance never grows: a pair it cannot place would wait forever
            have = ray.cluster_resources()
            if gpus > have.get("GPU", 0) or cpus > have.get("CPU", 0):
                raise BackendError(f"{name} x {model.name} needs {cpus} CPU(s) and {gpus} GPU(s); the local Ray "
                                   f"instance has {have.get('CPU', 0):g} and {have.get('GPU', 0):g}",
                                   hint="raise --jobs (the local instance's CPUs), or use a cluster with "
                                   "--ray-address")
        started = time.perf_counter()
        actor_class = ray.remote(PairWorker)
        actor = actor_class.options(num_cpus=cpus, num_gpus=gpus, max_restarts=MAX_RESTARTS,
                                    max_task_retries=0).remote(wspec)
        try:
            ref = actor.describe.remote()
            wait_for(ray, ref, stop)  # on a cluster, Ray may first have to add a node for it
            described = ray.get(ref)
        except ray.exceptions.RayError as e:
            ray.kill(actor, no_restart=True)
            raise BackendError(f"the Ray worker of {name} x {model.name} did not start: {_first_line(e)}",
                               hint=RAY_HINT if isinstance(e, ray.exceptions.RuntimeEnvSetupError) else None) from None
        except BaseException:
            ray.kill(actor, no_restart=True)  # its CPUs or GPUs go back to the other pairs
            raise
        if len(described) == 2:
            ray.kill(actor, no_restart=True)
            raise BackendError(described[0], hint=described[1])
        identity, facts, accelerator = described
        self._log(f"ready  {name} x {model.name}: its Ray worker opened the model and scorer "
                  f"in {time.perf_counter() - started:.1f} s")
        scorer = ReplayedJudge(facts) if facts.kind == "judge" else ReplayedScorer(facts)
        languages = {s.id: s.language for s in plan.samples}
        label = f"{name} x {model.name}"
        return RemoteBackend(ray, actor, identity, accelerator, scorer, languages, stop, label, self._log), scorer
