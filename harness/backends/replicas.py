"""One run over several identical OpenAI-compatible servers (vLLM replicas, or the ranks of
vLLM's external data parallelism), with one record at the end.

Why these rules:

- **Deterministic assignment.** Sample ``s`` goes to replica ``seed(s) % N``, where
  ``seed(s)`` is the request seed the run derives for it anyway (``seeds.sample_rule``).
  Timing never decides who answers, so the same run spreads the same way twice, and the
  record can state the rule instead of a list.
- **Identical replicas or no run.** Each replica's identity is read at start (its model
  listing, engine version, chat template probe) and must equal the first one's; a
  replica that differs is named in a :class:`~harness.errors.BackendError`, because a
  record that says "model X" must not hide answers from a model Y.
- **The answer does not say who gave it.** For greedy decoding on identical replicas the
  outputs are those of a single-endpoint run: the replica index goes into the outputs
  line's volatile ``timing`` (outside the content digest), the model section is the first
  replica's identity as it is, and the spread is the record's ``replicas`` section.
- **Failover, not retry storms.** Each replica keeps its own ``concurrency`` requests in
  flight. A request that fails without any HTTP answer after its retries (refused,
  reset, timed out) marks its replica dead for the rest of the run; that request and
  every one waiting for the replica go to the next live replica in ring order. Every
  sample is answered exactly once; when no replica is left the rest are errors, as with
  one dead endpoint.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from harness.backends.base import (
    Backend,
    GenerationRequest,
    GenerationResult,
    ReplicaFailure,
    ReplicaSet,
)
from harness.backends.openai import OpenAIBackend, redact_url
from harness.errors import BackendError

ASSIGNMENT_RULE = ("replica = seed % N (seed: the sample's request seed, seeds.sample_rule; N: len(endpoints)); "
                   "the samples of a replica that stops answering go to the next live replica, replica+1, +2, ... mod N")

_IDENTITY_FIELDS = ("name", "digest", "files", "revision", "chat_template_sha256")
_ENGINE_FIELDS = ("name", "version", "served_model", "chat_template_probe")


class ReplicaBackend(Backend):
    """Several :class:`OpenAIBackend` s that must serve the same model, as one backend."""

    def __init__(self, replicas: Sequence[OpenAIBackend]) -> None:
        if len(replicas) < 2:
            raise BackendError("a replicated run needs at least two endpoints", hint="give --endpoint more than once")
        self.replicas = tuple(replicas)
        self.endpoints = tuple(redact_url(r.base_url) for r in self.replicas)
        if len(set(self.endpoints)) != len(self.endpoints):
            raise BackendError("the same endpoint is given twice", hint="give each replica's URL once")
        check_same_identity(self.replicas, self.endpoints)
        self.identity = self.replicas[0].identity
        self.accelerator = None  # remote servers: this process cannot see their GPUs
        self.concurrency = sum(r.concurrency for r in self.replicas)
        self._lock = threading.Lock()
        self._dead: dict[int, str] = {}
        self._moved = [0] * len(self.replicas)
        self._answered = [0] * len(self.replicas)
        self._failures: list[int] = []  # replica indices in the order they died

    # -- the rule

    def assign(self, request: GenerationRequest) -> int:
        """The replica a request goes to while every replica is alive."""
        return request.seed % len(self.replicas)

    def _next_live(self, start: int) -> int | None:
        """``start`` if alive, else the next live replica in ring order; None if none is left."""
        n = len(self.replicas)
        for k in range(n):
            r = (start + k) % n
            if r not in self._dead:
                return r
        return None

    def _mark_dead(self, r: int, reason: str) -> None:
        if r not in self._dead:
            self._dead[r] = reason
            self._failures.append(r)

    def _no_replica(self, request: GenerationRequest, last: GenerationResult | None) -> GenerationResult:
        why = "; ".join(f"replica {i}: {self._dead[i]}" for i in self._failures)
        return GenerationResult("", "error", 0, last.latency_s if last else 0.0,
                                attempts=last.attempts if last else 0,
                                error=f"no replica left: all {len(self.replicas)} stopped answering ({why})")

    def _done(self, r: int, result: GenerationResult) -> GenerationResult:
        if not result.error:
            self._answered[r] += 1
        return replace(result, replica=r)

    # -- asking

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """One request on its replica, failing over synchronously (the judge-scorer path)."""
        import asyncio

        if asyncio._get_running_loop() is not None:  # as OpenAIBackend.generate: a helper thread
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=1) as pool:
                return pool.submit(self.generate, request).result()
        r = self.assign(request)
        last: GenerationResult | None = None
        while True:
            with self._lock:
                target = self._next_live(r)
                if target is None:
                    return self._no_replica(request, last)
                if target != r:  # r is dead: the sample leaves it
                    self._moved[r] += 1
                r = target
            result, gone = self.replicas[r].generate_checked(request)
            with self._lock:
                if not gone:
                    return self._done(r, result)
                self._mark_dead(r, result.error or "no answer")
                last = result

    def generate_many(
        self, requests: Sequence[GenerationRequest], on_result: Callable[[int, GenerationResult], None],
    ) -> None:
        """Every request on its replica, each replica with its own ``concurrency`` in flight,
        from one event loop; ``on_result(index, result)`` runs on the calling thread as each
        completes. Failover moves a dead replica's in-flight and waiting requests."""
        import asyncio

        loop = asyncio.new_event_loop()
        origins = [r.new_origin() for r in self.replicas]
        try:
            loop.run_until_complete(self._drive(requests, on_result, origins))
        finally:
            for origin in origins:
                loop.run_until_complete(origin.aclose())
            loop.close()

    async def _drive(
        self, requests: Sequence[GenerationRequest], on_result: Callable[[int, GenerationResult], None],
        origins: list[Any],
    ) -> None:
        import asyncio

        queues: list[deque[int]] = [deque() for _ in self.replicas]
        with self._lock:
            for i, req in enumerate(requests):
                assigned = self.assign(req)
                r = self._next_live(assigned)
                if r is None:
                    on_result(i, self._no_replica(req, None))
                else:
                    if r != assigned:  # died earlier (a backend shared by a suite's runs)
                        self._moved[assigned] += 1
                    queues[r].append(i)
        remaining = sum(len(q) for q in queues)
        changed = asyncio.Condition()

        def finish(i: int, result: GenerationResult) -> None:
            nonlocal remaining
            remaining -= 1
            on_result(i, result)

        def move_away(r: int, i: int, last: GenerationResult | None) -> None:
            """Request ``i`` leaves dead replica ``r``: to the next live one, or an error."""
            target = self._next_live(r)
            self._moved[r] += 1
            if target is None:
                finish(i, self._no_replica(requests[i], last))
            else:
                queues[target].append(i)

        async def worker(r: int) -> None:
            while True:
                async with changed:
                    await changed.wait_for(lambda: bool(queues[r]) or remaining == 0 or r in self._dead)
                    if remaining == 0 or r in self._dead:
                        return
                    i = queues[r].popleft()
                result, gone = await self.replicas[r].attempt(origins[r], requests[i])
                async with changed:
                    with self._lock:
                        if not gone:
                            finish(i, self._done(r, result))
                        else:
                            self._mark_dead(r, result.error or "no answer")
                            move_away(r, i, result)
                            while queues[r]:
                                move_away(r, queues[r].popleft(), result)
                    changed.notify_all()

        tasks = [asyncio.ensure_future(worker(r)) for r, rep in enumerate(self.replicas)
                 for _ in range(max(1, min(rep.concurrency, len(requests))))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def replica_report(self) -> ReplicaSet:
        """The record's ``replicas`` section. ``answered`` and ``moved`` count since the previous
        report (a suite shares one backend between its runs, one report per record); a replica
        that died stays dead, and listed, for every later run on this backend."""
        with self._lock:
            report = ReplicaSet(
                endpoints=self.endpoints,
                rule=ASSIGNMENT_RULE,
                concurrency_per_replica=self.replicas[0].concurrency,
                answered=tuple(self._answered),
                failures=tuple(ReplicaFailure(replica=r, endpoint=self.endpoints[r], reason=self._dead[r],
                                              moved=self._moved[r]) for r in self._failures),
            )
            self._answered = [0] * len(self.replicas)
            self._moved = [0] * len(self.replicas)
            return report

    def close(self) -> None:
        for r in self.replicas:
            r.close()


def check_same_identity(replicas: Sequence[OpenAIBackend], endpoints: Sequence[str]) -> None:
    """Refuse replicas that do not serve the same model on the same engine (a
    :class:`~harness.errors.BackendError`, exit 2, naming the first one that differs)."""
    first = replicas[0].identity
    for i, rep in enumerate(replicas[1:], 1):
        other = rep.identity
        diffs = [f for f in _IDENTITY_FIELDS if getattr(other, f) != getattr(first, f)]
        diffs += [f"engine.{f}" for f in _ENGINE_FIELDS if getattr(other.engine, f) != getattr(first.engine, f)]
        if diffs:
            raise BackendError(
                f"replica {i} ({endpoints[i]}) does not serve what replica 0 ({endpoints[0]}) serves: "
                f"{', '.join(diffs)} differ (e.g. engine {other.engine.name} {other.engine.version} vs "
                f"{first.engine.name} {first.engine.version})",
                hint="every --endpoint must serve the same model with the same engine version",
            )


def open_replicas(
    endpoints: Sequence[str], model: str, *, api_key_env: str, concurrency: int,
) -> ReplicaBackend:
    """Connect to every endpoint (each checked as a single endpoint is), then as one backend."""
    opened: list[OpenAIBackend] = []
    try:
        for url in endpoints:
            opened.append(OpenAIBackend(url, model, api_key_env=api_key_env, concurrency=concurrency))
        return ReplicaBackend(opened)
    except BaseException:
        for b in opened:
            b.close()
        raise
