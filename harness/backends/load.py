"""Opening a backend by kind: what ``harness run`` and a judge scorer call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.backends.base import Backend
from harness.backends.openai import OpenAIBackend
from harness.backends.transformers import TransformersBackend
from harness.errors import BackendError

BACKENDS = ("transformers", "openai")


def load_backend(
    kind: str, model: str | None, *, threads: int = 1, endpoint: str | None = None, concurrency: int = 16,
    api_key_env: str = "OPENAI_API_KEY", engine_args: dict[str, Any] | None = None, local_path: Path | None = None,
) -> Backend:
    if kind == "transformers":
        return TransformersBackend(model, threads=threads)
    if kind == "openai":
        if not endpoint or not model:
            raise BackendError("the openai backend needs --endpoint and --model", hint="e.g. --endpoint http://127.0.0.1:8000/v1 --model my-model")
        return OpenAIBackend(endpoint, model, api_key_env=api_key_env, concurrency=concurrency,
                             engine_args=engine_args, local_path=local_path)
    raise BackendError(f"unknown backend {kind!r}", hint=f"choose one of: {', '.join(BACKENDS)}")
