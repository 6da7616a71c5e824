"""Hugging Face transformers, in-process: the backend of the embedded model and of local judges."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from harness._internal.hashing import canonical_digest
from harness.backends.base import (
    DEFAULT_MODEL_DIR,
    DEFAULT_MODEL_NAME,
    Backend,
    GenerationRequest,
    GenerationResult,
    ModelIdentity,
    digest_model_files,
    display_path,
)
from harness.errors import BackendError


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


class TransformersBackend(Backend):
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
        logging: Any = transformers.logging  # its helpers are not annotated
        logging.set_verbosity_error()
        logging.disable_progress_bar()
        files = digest_model_files(path)
        torch.set_num_threads(threads)
        self._tok: Any
        self._model: Any  # transformers' generate() is typed for its own mixins only
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
            path=display_path(path),
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
