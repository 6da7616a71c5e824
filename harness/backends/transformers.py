"""Hugging Face transformers, in-process: the backend of the embedded model and of local judges.

The device, dtype and batch size change the arithmetic (a GPU's kernels, bfloat16's
rounding, the padding of a batch), and so, occasionally, a greedy answer: all three are
part of the run configuration, recorded as resolved (``auto`` is never written), and
a reproduction uses the recorded ones. The accelerator's identity goes into the record's
``platform.accelerator``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
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
from harness.environment import torch_accelerator
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


DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_device(torch: Any, device: str) -> str:
    """``auto``: cuda when torch sees a GPU, else cpu. ``cuda`` without one is refused."""
    if device not in DEVICES:
        raise BackendError(f"unknown device {device!r}", hint=f"choose one of: {', '.join(DEVICES)}")
    has_cuda = bool(torch.cuda.is_available())
    if device == "cuda" and not has_cuda:
        raise BackendError(
            "--device cuda was asked for, but torch sees no CUDA GPU here "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'})",
            hint="run on a machine with a GPU and a CUDA build of torch, or use --device cpu (or auto)",
        )
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    return device


def resolve_dtype(torch: Any, dtype: str, device: str) -> str:
    """``auto``: bfloat16 on a GPU that supports it (else float16), float32 on the CPU."""
    if dtype not in DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}", hint=f"choose one of: {', '.join(DTYPES)}")
    if dtype != "auto":
        return dtype
    if device == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


class TransformersBackend(Backend):
    """Hugging Face transformers, in-process.

    Batch size one (the default) is deliberate: padding in a batch changes the arithmetic
    and so, occasionally, a greedy answer; per-sample generation makes outputs independent
    of order and concurrency. ``batch_size`` > 1 generates that many prompts at once, left
    padded, in the run's fixed request order (so the batches, and the answers, are the
    same every time); it is recorded, and reproduction uses it. Sampled decoding
    (temperature > 0) in a batch seeds torch with the batch's first request seed.

    The library default is the CPU (judges, diagnosis and suites keep today's arithmetic);
    ``harness run --device auto`` (its default) takes a GPU when there is one.
    """

    def __init__(
        self, model: str | Path | None = None, *, threads: int = 1, name: str | None = None, device: str = "cpu",
        dtype: str = "auto", batch_size: int = 1,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        if batch_size < 1:
            raise BackendError(f"batch size {batch_size} is not positive", hint="--batch-size 1 or more")
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
        self.device = resolve_device(torch, device)
        self.dtype = resolve_dtype(torch, dtype, self.device)
        self.batch_size = batch_size
        self.concurrency = batch_size  # > 1: run.py hands over requests in bulk (generate_many)
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
                str(path), local_files_only=True, dtype=getattr(torch, self.dtype)
            )
            if self.device != "cpu":
                self._model.to(self.device)
        except Exception as e:
            raise BackendError(f"could not load the model from {path}: {e}", hint="check the model folder") from None
        self._model.eval()
        self._torch = torch
        self._lock = threading.Lock()  # one generate() at a time: torch.manual_seed is global
        self.accelerator = torch_accelerator(torch, self.device)
        template = getattr(self._tok, "chat_template", None)
        self.identity = ModelIdentity(
            backend="transformers",
            name=name or (DEFAULT_MODEL_NAME if path.resolve() == DEFAULT_MODEL_DIR.resolve() else path.name),
            path=display_path(path),
            revision=None,
            files=files,
            digest=canonical_digest(files),
            engine={"name": "transformers", "version": transformers.__version__, "torch": torch.__version__},
            engine_args={"threads": threads, "dtype": self.dtype, "batch_size": batch_size, "device": self.device},
            chat_template_sha256=canonical_digest(template) if template else None,
        )

    def _pad_id(self) -> int:
        pad: int = self._tok.pad_token_id if self._tok.pad_token_id is not None else self._tok.eos_token_id
        return pad

    def _kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        sample = request.temperature > 0
        kwargs: dict[str, Any] = {"max_new_tokens": request.max_tokens, "do_sample": sample, "pad_token_id": self._pad_id()}
        if sample:
            kwargs.update(temperature=request.temperature, top_p=request.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs

    def _finish(self, new: list[int], request: GenerationRequest, latency_s: float) -> GenerationResult:
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
        return GenerationResult(text=text, finish_reason=finish, completion_tokens=len(new), latency_s=latency_s)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        torch = self._torch
        start = time.perf_counter()
        ids, _ = _apply_chat_template(self._tok, request.prompt)
        with self._lock:
            input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
            torch.manual_seed(request.seed)
            with torch.inference_mode():
                out = self._model.generate(input_ids, attention_mask=torch.ones_like(input_ids), **self._kwargs(request))
            new = out[0, input_ids.shape[1]:].tolist()
        return self._finish(new, request, time.perf_counter() - start)

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Several requests with the same generation parameters in one left-padded batch."""
        torch = self._torch
        start = time.perf_counter()
        rows = [_apply_chat_template(self._tok, r.prompt)[0] for r in requests]
        width = max(len(r) for r in rows)
        pad = self._pad_id()
        ids = [[pad] * (width - len(r)) + r for r in rows]
        mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
        with self._lock:
            input_ids = torch.tensor(ids, dtype=torch.long, device=self.device)
            attention = torch.tensor(mask, dtype=torch.long, device=self.device)
            torch.manual_seed(requests[0].seed)
            with torch.inference_mode():
                out = self._model.generate(input_ids, attention_mask=attention, **self._kwargs(requests[0]))
            new = [out[k, width:].tolist() for k in range(len(requests))]
        latency = (time.perf_counter() - start) / len(requests)  # each sample's share of the batch
        return [self._finish(n, r, latency) for n, r in zip(new, requests, strict=True)]

    def generate_many(
        self, requests: Sequence[GenerationRequest], on_result: Callable[[int, GenerationResult], None],
    ) -> None:
        """Every request, ``batch_size`` at a time in the order given; ``on_result`` per sample."""
        if self.batch_size <= 1:
            super().generate_many(requests, on_result)
            return
        i = 0
        while i < len(requests):
            params = _params(requests[i])
            j = i + 1
            while j < len(requests) and j - i < self.batch_size and _params(requests[j]) == params:
                j += 1
            for k, result in enumerate(self.generate_batch(requests[i:j])):
                on_result(i + k, result)
            i = j

    def close(self) -> None:
        self._model = None


def _params(r: GenerationRequest) -> tuple[Any, ...]:
    return (r.max_tokens, r.temperature, r.top_p, r.stop)
