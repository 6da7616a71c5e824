"""Opening a backend by kind: what ``harness run``, a reproduction and a judge scorer call."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.backends.base import DEFAULT_MODEL_DIR, Backend
from harness.backends.openai import OpenAIBackend
from harness.backends.transformers import TransformersBackend
from harness.backends.vllm import VLLMServer
from harness.environment import gpu_accelerator_from_smi
from harness.errors import BackendError

BACKENDS = ("transformers", "openai")


def endpoint_list(endpoint: str | Sequence[str] | None) -> tuple[str, ...]:
    """One ``--endpoint`` or several, as a tuple (empty for none)."""
    if endpoint is None:
        return ()
    return (endpoint,) if isinstance(endpoint, str) else tuple(endpoint)


def load_backend(
    kind: str, model: str | None, *, threads: int = 1, endpoint: str | Sequence[str] | None = None,
    concurrency: int = 16, api_key_env: str = "OPENAI_API_KEY", engine_args: dict[str, Any] | None = None,
    local_path: Path | None = None, device: str = "cpu", dtype: str = "auto", batch_size: int = 1,
) -> Backend:
    """A backend of ``kind``: ``transformers`` (``model`` a local folder; None: the embedded
    model; on ``device`` in ``dtype``, ``batch_size`` prompts at a time) or ``openai``
    (``model`` the served name at ``endpoint``; several endpoints: one run over replicas)."""
    if kind == "transformers":
        return TransformersBackend(model, threads=threads, device=device, dtype=dtype, batch_size=batch_size)
    if kind == "openai":
        urls = endpoint_list(endpoint)
        if not urls or not model:
            raise BackendError("the openai backend needs --endpoint and --model", hint="e.g. --endpoint http://127.0.0.1:8000/v1 --model my-model")
        if len(urls) > 1:
            from harness.backends.replicas import open_replicas

            return open_replicas(urls, model, api_key_env=api_key_env, concurrency=concurrency)
        return OpenAIBackend(urls[0], model, api_key_env=api_key_env, concurrency=concurrency,
                             engine_args=engine_args, local_path=local_path)
    raise BackendError(f"unknown backend {kind!r}", hint=f"choose one of: {', '.join(BACKENDS)}")


@contextmanager
def open_backend(
    kind: str, model: str | None, *, seed: int, threads: int = 1, endpoint: str | Sequence[str] | None = None,
    serve: str | None = None, engine_args: Sequence[str] = (), concurrency: int = 16,
    api_key_env: str = "OPENAI_API_KEY", deterministic: bool = False, vllm_python: str | None = None,
    device: str = "cpu", dtype: str = "auto", batch_size: int = 1,
) -> Iterator[Backend]:
    """The backend a run asks, closed (and a launched server stopped) when the block ends.

    ``serve="vllm"`` launches a vLLM server for ``model`` with the run ``seed`` and
    ``engine_args`` and talks to it over HTTP (tensor parallelism is an engine argument;
    the GPUs are named from nvidia-smi); ``endpoint`` talks to a server already running,
    or to several replicas of one; otherwise ``kind`` is loaded in-process.
    """
    server = None
    if serve:
        if serve != "vllm":
            raise BackendError(f"unknown server {serve!r}", hint="--serve vllm is the one supported")
        server = VLLMServer(model or str(DEFAULT_MODEL_DIR), seed=seed, extra_args=tuple(engine_args),
                            deterministic=deterministic, python=vllm_python)
        server.start()
    try:
        if server is not None:
            backend = load_backend("openai", server.served_name, endpoint=server.base_url, concurrency=concurrency,
                                   engine_args=server.engine_args(), local_path=server.local_path)
            backend.accelerator = gpu_accelerator_from_smi()
        elif endpoint:
            backend = load_backend("openai", model, endpoint=endpoint, concurrency=concurrency,
                                   api_key_env=api_key_env)
        else:
            backend = load_backend(kind, model, threads=threads, device=device, dtype=dtype, batch_size=batch_size)
        try:
            yield backend
        finally:
            backend.close()
    finally:
        if server is not None:
            server.stop()
