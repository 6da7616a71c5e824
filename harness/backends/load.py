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
from harness.errors import BackendError

BACKENDS = ("transformers", "openai")


def load_backend(
    kind: str, model: str | None, *, threads: int = 1, endpoint: str | None = None, concurrency: int = 16,
    api_key_env: str = "OPENAI_API_KEY", engine_args: dict[str, Any] | None = None, local_path: Path | None = None,
) -> Backend:
    """A backend of ``kind``: ``transformers`` (``model`` a local folder; None: the embedded
    model) or ``openai`` (``model`` the served name at ``endpoint``)."""
    if kind == "transformers":
        return TransformersBackend(model, threads=threads)
    if kind == "openai":
        if not endpoint or not model:
            raise BackendError("the openai backend needs --endpoint and --model", hint="e.g. --endpoint http://127.0.0.1:8000/v1 --model my-model")
        return OpenAIBackend(endpoint, model, api_key_env=api_key_env, concurrency=concurrency,
                             engine_args=engine_args, local_path=local_path)
    raise BackendError(f"unknown backend {kind!r}", hint=f"choose one of: {', '.join(BACKENDS)}")


@contextmanager
def open_backend(
    kind: str, model: str | None, *, seed: int, threads: int = 1, endpoint: str | None = None,
    serve: str | None = None, engine_args: Sequence[str] = (), concurrency: int = 16,
    api_key_env: str = "OPENAI_API_KEY", deterministic: bool = False, vllm_python: str | None = None,
) -> Iterator[Backend]:
    """The backend a run asks, closed (and a launched server stopped) when the block ends.

    ``serve="vllm"`` launches a vLLM server for ``model`` with the run ``seed`` and
    ``engine_args`` and talks to it over HTTP; ``endpoint`` talks to a server already
    running; otherwise ``kind`` is loaded in-process.
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
        elif endpoint:
            backend = load_backend("openai", model, endpoint=endpoint, concurrency=concurrency,
                                   api_key_env=api_key_env)
        else:
            backend = load_backend(kind, model, threads=threads)
        try:
            yield backend
        finally:
            backend.close()
    finally:
        if server is not None:
            server.stop()
