"""What every model backend is and returns, and the identity of whatever answered.

A score is only as meaningful as the answer to "which model?", so every backend
reports a :class:`ModelIdentity`: for local weights, a digest of the files actually
loaded, not a name that can point at different bytes tomorrow. The identity is the run
record's ``model`` section as it is, and travels from there into the dossier entry, the
diff and the reproduction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, JsonValue

from harness._internal.frozen import Frozen, Sparse
from harness._internal.hashing import sha256_file
from harness.environment import AcceleratorInfo
from harness.errors import BackendError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny-chat"
"""The embedded tiny-chat model (built by tools/build_tiny_chat.py)."""
DEFAULT_MODEL_NAME = "tiny-chat"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class ChatMessage(Frozen):
    role: str
    content: str


class TemplateProbe(Frozen):
    """The chat template as a server applies it: a fixed conversation rendered by the
    server's own tokenizer (vLLM's /tokenize and /detokenize), not by a local copy."""

    messages: tuple[ChatMessage, ...]
    token_ids_sha256: str
    rendered: JsonValue
    """What the server's /detokenize returned as the prompt (a string from vLLM)."""
    rendered_sha256: str | None


class EngineInfo(Sparse):
    """What generated the answers: ``name`` and ``version`` always; the torch version for
    transformers; the served model's listing and the template probe for a server."""

    name: str | None = None
    version: str | None = None
    torch: str | None = None
    served_model: dict[str, JsonValue] | None = None
    """The server's own listing of the model (its stable keys only), verbatim."""
    chat_template_probe: TemplateProbe | None = None


class BatchInvariance(Frozen):
    """Whether a launched vLLM was asked for batch-invariant kernels, and whether it took."""

    requested: bool
    enabled: bool
    reason: str


class EngineArgs(Sparse):
    """The settings that shaped the outputs; which keys are present depends on the backend."""

    threads: int | None = None
    dtype: str | None = None
    batch_size: int | None = None
    device: str | None = None
    argv: tuple[str, ...] | None = None
    """A launched vLLM server's command line (minus the port and this machine's paths)."""
    batch_invariant: BatchInvariance | None = None
    env: dict[str, str] | None = None
    concurrency: int | None = None
    max_retries: int | None = None
    timeout_s: float | None = None


class ModelIdentity(Frozen):
    """What answered: the record's ``model`` section, and what the dossier, diff and
    reproduction compare. ``digest`` is one digest over the digests of the files loaded
    (``files``); for a remote model without local files, over the server's listing."""

    backend: str
    name: str
    path: str | None
    revision: str | None
    files: dict[str, str]
    digest: str
    engine: EngineInfo = Field(default_factory=EngineInfo)
    engine_args: EngineArgs = Field(default_factory=EngineArgs)
    chat_template_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    sample_id: str
    prompt: str
    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    seed: int


@dataclass(frozen=True, slots=True)
class GenerationResult:
    text: str
    finish_reason: str
    completion_tokens: int
    latency_s: float
    attempts: int = 1
    error: str | None = None
    replica: int | None = None
    """Which replica answered (an index into the record's ``replicas.endpoints``), for a run
    over several endpoints; written in the outputs line's volatile ``timing``."""


class ReplicaFailure(Frozen):
    """A replica that stopped answering during the run, and what moved away from it."""

    replica: int
    endpoint: str
    reason: str
    moved: int
    """Samples assigned to it (in flight or waiting) that another replica answered instead."""


class ReplicaSet(Frozen):
    """The record's ``replicas`` section: one run spread over several identical servers.

    ``rule`` states the deterministic assignment; ``answered`` counts, per replica, the
    samples it answered in the attempt that finished the run (a resumed run's earlier
    samples say so on their own lines); ``failures`` lists replicas that died, in order.
    """

    endpoints: tuple[str, ...]
    rule: str
    concurrency_per_replica: int
    answered: tuple[int, ...]
    failures: tuple[ReplicaFailure, ...] = ()


class Backend(ABC):
    """A model the harness can ask: what it is (:attr:`identity`) and how to ask it.

    Subclasses set :attr:`identity` and implement :meth:`generate`. ``concurrency`` is
    how many requests the backend serves at once (1 for an in-process model, whose
    answers must not depend on batching); :meth:`generate_many` is the fast path for
    several in flight, and by default asks one at a time.
    """

    identity: ModelIdentity
    concurrency: int = 1
    accelerator: AcceleratorInfo | None = None
    """What did the arithmetic, when this process can tell (the record's ``platform.accelerator``)."""

    @abstractmethod
    def generate(self, request: GenerationRequest) -> GenerationResult:
        """One answer. A request that cannot be answered is a result with ``error`` set
        (or a :class:`~harness.errors.BackendError`), never a made-up answer."""

    def generate_many(
        self, requests: Sequence[GenerationRequest], on_result: Callable[[int, GenerationResult], None],
    ) -> None:
        """Every request, calling ``on_result(index, result)`` on the calling thread as each
        completes (so it may write files without locks); this default goes one at a time."""
        for i, request in enumerate(requests):
            on_result(i, self.generate(request))

    def replica_report(self) -> ReplicaSet | None:
        """For a run over several endpoints, how it was spread and what failed over; else None."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook: backends without resources need nothing
        """Release the model or the connections."""


def digest_model_files(path: Path) -> dict[str, str]:
    """sha256 of every file a transformers load can read: weights, config, tokenizer."""
    out: dict[str, str] = {}
    for p in sorted(path.rglob("*")):
        if not p.is_file() or p.name.startswith(".") or p.suffix == ".md":
            continue
        rel = p.relative_to(path).as_posix()
        if "/." in f"/{rel}":
            continue
        out[rel] = sha256_file(p)
    if not any(k.endswith(_WEIGHT_SUFFIXES) for k in out):
        raise BackendError(
            f"no weight files (*.safetensors, *.bin) in {path}",
            hint="point --model at a folder made by save_pretrained",
        )
    return out


def display_path(path: Path) -> str:
    """A path that means something on another machine: repo-relative for the embedded model."""
    resolved = path.resolve()
    try:
        return "harness/" + resolved.relative_to(_PACKAGE_ROOT).as_posix()
    except ValueError:
        return str(path)
