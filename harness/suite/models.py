"""Opening a suite model's backend, the one way both executors do it.

The local executor opens each model once in the driver and shares it between pairs;
the Ray executor opens it inside each pair's worker (:mod:`harness.suite.ray_executor`).
Both call :func:`open_model`, so a model entry means the same backend, with the same
arguments and therefore the same identity and answers, whichever executor runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from harness.backends.base import Backend
from harness.backends.load import open_backend
from harness.suite.file import ModelSpec


def open_model(spec: ModelSpec, path: str | None, seed: int, vllm_python: str | None,
               opener: Callable[..., AbstractContextManager[Backend]] = open_backend) -> AbstractContextManager[Backend]:
    """The backend of ``spec`` (``path`` is its folder already resolved against the suite
    file, or None for the embedded model or an endpoint), closed when the block ends.
    ``opener`` is :func:`~harness.backends.load.open_backend` unless a caller passes its own."""
    cm: AbstractContextManager[Backend] = opener(
        spec.backend if not spec.serve else "openai", spec.model if spec.endpoint else path, seed=seed,
        threads=spec.threads, endpoint=spec.all_endpoints, serve=spec.serve, engine_args=spec.engine_args,
        concurrency=spec.concurrency, api_key_env=spec.api_key_env, deterministic=spec.deterministic,
        vllm_python=vllm_python, device=spec.device, dtype=spec.dtype, batch_size=spec.batch_size)
    return cm
