"""Model backends: transformers in-process, any OpenAI-compatible endpoint, a vLLM server.

Every backend reports the :class:`ModelIdentity` of what answered and answers
:class:`GenerationRequest` s; :mod:`.base` defines the contract, :mod:`.transformers`
and :mod:`.openai` implement it, :mod:`.vllm` launches a server for the OpenAI
backend to talk to, and :mod:`.load` opens one by kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from harness.backends.base import (
        DEFAULT_MODEL_DIR,
        DEFAULT_MODEL_NAME,
        Backend,
        GenerationRequest,
        GenerationResult,
        ModelIdentity,
        digest_model_files,
    )
    from harness.backends.load import BACKENDS, load_backend

__all__ = [
    "BACKENDS",
    "Backend",
    "DEFAULT_MODEL_DIR",
    "DEFAULT_MODEL_NAME",
    "GenerationRequest",
    "GenerationResult",
    "ModelIdentity",
    "digest_model_files",
    "load_backend",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "BACKENDS": "harness.backends.load",
    "Backend": "harness.backends.base",
    "DEFAULT_MODEL_DIR": "harness.backends.base",
    "DEFAULT_MODEL_NAME": "harness.backends.base",
    "GenerationRequest": "harness.backends.base",
    "GenerationResult": "harness.backends.base",
    "ModelIdentity": "harness.backends.base",
    "digest_model_files": "harness.backends.base",
    "load_backend": "harness.backends.load",
})
