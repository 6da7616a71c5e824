"""Model backends: transformers in-process, any OpenAI-compatible endpoint, a vLLM server.

Every backend reports the :class:`ModelIdentity` of what answered and answers
:class:`GenerationRequest` s; :mod:`.base` defines the contract, :mod:`.transformers`
and :mod:`.openai` implement it, :mod:`.vllm` launches a server for the OpenAI
backend to talk to, and :mod:`.load` opens one by kind.
"""

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
    "DEFAULT_MODEL_DIR",
    "DEFAULT_MODEL_NAME",
    "Backend",
    "GenerationRequest",
    "GenerationResult",
    "ModelIdentity",
    "digest_model_files",
    "load_backend",
]
