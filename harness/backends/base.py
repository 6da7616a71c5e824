"""What every model backend is and returns, and the identity of whatever answered.

A score is only as meaningful as the answer to "which model?", so every backend
reports a :class:`ModelIdentity`: for local weights, a digest of the files actually
loaded, not a name that can point at different bytes tomorrow. The identity is the run
record's ``model`` section as it is, and travels from there into the dossier entry, the
diff and the reproduction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness._internal.hashing import sha256_file
from harness.errors import BackendError

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny-chat"
"""The embedded tiny-chat model (built by tools/build_tiny_chat.py)."""
DEFAULT_MODEL_NAME = "tiny-chat"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ModelIdentity:
    backend: str
    name: str
    path: str | None
    revision: str | None
    files: dict[str, str]
    digest: str  # one digest over the files' digests
    engine: dict[str, Any] = field(default_factory=dict)
    engine_args: dict[str, Any] = field(default_factory=dict)
    chat_template_sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "name": self.name,
            "path": self.path,
            "revision": self.revision,
            "files": dict(sorted(self.files.items())),
            "digest": self.digest,
            "engine": self.engine,
            "engine_args": self.engine_args,
            "chat_template_sha256": self.chat_template_sha256,
        }


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


class Backend(Protocol):
    identity: ModelIdentity

    def generate(self, request: GenerationRequest) -> GenerationResult: ...

    def close(self) -> None: ...


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
