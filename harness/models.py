"""Model backends, and the identity of whatever answered.

A score is only as meaningful as the answer to "which model?", so every backend
reports an identity: for local weights, a digest of the files actually loaded, not
a name that can point at different bytes tomorrow.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness._hashing import canonical_digest, sha256_file
from harness.errors import BackendError

DEFAULT_MODEL_DIR = Path(__file__).parent / "assets" / "tiny-chat"
DEFAULT_MODEL_NAME = "tiny-chat"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


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


def _apply_chat_template(tokenizer: Any, prompt: str) -> tuple[list[int], str | None]:
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise BackendError(
            "the model's tokenizer has no chat template",
            hint="use a chat model, or add a chat_template to tokenizer_config.json",
        )
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
    )
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return list(ids), template


class TransformersBackend:
    """Hugging Face transformers, in-process, one sample at a time.

    Batch size one is deliberate: padding in a batch changes the arithmetic and so,
    occasionally, a greedy answer; per-sample generation makes outputs independent of
    order and concurrency.
    """

    def __init__(self, model: str | Path | None = None, *, threads: int = 1, name: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        path = Path(model) if model else DEFAULT_MODEL_DIR
        if not path.is_dir():
            raise BackendError(
                f"model folder {path} does not exist",
                hint="pass --model with a local folder made by save_pretrained (hub downloads are off)",
            )
        try:
            import torch
            import transformers
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:  # pragma: no cover - install problem
            raise BackendError(f"transformers backend unavailable: {e}", hint="run `uv sync`") from None
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        files = digest_model_files(path)
        torch.set_num_threads(threads)
        try:
            self._tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self._model = AutoModelForCausalLM.from_pretrained(
                str(path), local_files_only=True, dtype=torch.float32
            )
        except Exception as e:
            raise BackendError(f"could not load the model from {path}: {e}", hint="check the model folder") from None
        self._model.eval()
        self._torch = torch
        template = getattr(self._tok, "chat_template", None)
        self.identity = ModelIdentity(
            backend="transformers",
            name=name or (DEFAULT_MODEL_NAME if path.resolve() == DEFAULT_MODEL_DIR.resolve() else path.name),
            path=_display_path(path),
            revision=None,
            files=files,
            digest=canonical_digest(files),
            engine={"name": "transformers", "version": transformers.__version__, "torch": torch.__version__},
            engine_args={"threads": threads, "dtype": "float32", "batch_size": 1, "device": "cpu"},
            chat_template_sha256=canonical_digest(template) if template else None,
        )

    def generate(self, request: GenerationRequest) -> GenerationResult:
        torch = self._torch
        start = time.perf_counter()
        ids, _ = _apply_chat_template(self._tok, request.prompt)
        input_ids = torch.tensor([ids], dtype=torch.long)
        sample = request.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": request.max_tokens,
            "do_sample": sample,
            "pad_token_id": self._tok.pad_token_id if self._tok.pad_token_id is not None else self._tok.eos_token_id,
        }
        if sample:
            kwargs.update(temperature=request.temperature, top_p=request.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        torch.manual_seed(request.seed)
        with torch.inference_mode():
            out = self._model.generate(input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
        new = out[0, input_ids.shape[1]:].tolist()
        eos = self._tok.eos_token_id
        finish = "length"
        if eos is not None and eos in new:
            new = new[: new.index(eos)]
            finish = "stop"
        text = self._tok.decode(new, skip_special_tokens=True)
        for s in request.stop:
            if s and s in text:
                text = text[: text.index(s)]
                finish = "stop"
        return GenerationResult(
            text=text,
            finish_reason=finish,
            completion_tokens=len(new),
            latency_s=time.perf_counter() - start,
        )

    def close(self) -> None:
        self._model = None


def _display_path(path: Path) -> str:
    """A path that means something on another machine: repo-relative for the embedded model."""
    resolved = path.resolve()
    pkg_root = Path(__file__).resolve().parent
    try:
        return "harness/" + resolved.relative_to(pkg_root).as_posix()
    except ValueError:
        return str(path)


BACKENDS = ("transformers",)


def load_backend(kind: str, model: str | None, *, threads: int = 1, extra: Sequence[str] = ()) -> Backend:
    if kind == "transformers":
        return TransformersBackend(model, threads=threads)
    raise BackendError(f"unknown backend {kind!r}", hint=f"choose one of: {', '.join(BACKENDS)}")
