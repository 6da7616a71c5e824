"""Forward hooks on a Hugging Face model: read the residual stream, remove a direction, add a vector.

A diagnosis must look at the model an evaluation run used, loaded the same way, so
:class:`DiagnosticBackend` is the transformers backend itself (same files, digest, dtype,
threads and chat template) with access to its modules. Nothing of the model is
re-implemented: activations are read and changed with PyTorch forward hooks on the
model's own decoder layers, and generation with an intervention is the backend's own
``generate`` while the hooks are in place, so "before" and "after" differ only by the hook.

Layer ``l`` means the residual stream after decoder layer ``l`` (0-based), which is
``hidden_states[l + 1]`` in transformers' terms.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.transformers import TransformersBackend, _apply_chat_template
from harness.diagnose.probes import Vector
from harness.errors import BackendError


class DiagnosticBackend(TransformersBackend):
    """The transformers backend of a run, plus what a diagnosis needs: its decoder layers,
    the last-token activations of a prompt, and hooks that change the residual stream."""

    def __init__(self, model: str | Path | None = None, *, threads: int = 1) -> None:
        super().__init__(model, threads=threads)
        self.layers: list[Any] = decoder_layers(self._model)
        config = self._model.config
        self.hidden_size = int(config.hidden_size)

    @property
    def torch(self) -> Any:
        return self._torch

    def activations(self, prompt: str, layers: Sequence[int]) -> Vector:
        """The residual stream after each of ``layers`` at the prompt's last token (the chat
        template applied as in a run), as float64 of shape ``(len(layers), hidden)``."""
        torch = self._torch
        ids, _ = _apply_chat_template(self._tok, prompt)
        seen: dict[int, Any] = {}

        def keep(i: int) -> Callable[..., None]:
            def hook(_module: Any, _inputs: Any, output: Any) -> None:
                hidden = output[0] if isinstance(output, tuple) else output
                seen[i] = hidden[0, -1].detach().to(torch.float64).numpy().copy()
            return hook

        handles = [self.layers[i].register_forward_hook(keep(i)) for i in layers]
        try:
            with torch.inference_mode():
                self._model(torch.tensor([ids], dtype=torch.long))
        finally:
            for h in handles:
                h.remove()
        return np.stack([seen[i] for i in layers]).astype(np.float64)

    @contextlib.contextmanager
    def ablating(self, direction: Vector, layers: Sequence[int]) -> Iterator[None]:
        """Project ``direction`` out of what each of ``layers`` reads (its input) and writes
        (its attention and MLP outputs), at every position, so the layers can neither see
        nor add it (directional ablation, Arditi et al. 2024)."""
        torch = self._torch
        u = torch.tensor(direction / np.linalg.norm(direction), dtype=torch.float32)

        def remove(x: Any) -> Any:
            return x - (x @ u).unsqueeze(-1) * u

        def on_input(_module: Any, args: Any, kwargs: Any) -> Any:
            if args:
                return (remove(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": remove(kwargs["hidden_states"])}

        def on_output(_module: Any, _inputs: Any, output: Any) -> Any:
            if isinstance(output, tuple):
                return (remove(output[0]), *output[1:])
            return remove(output)

        handles = []
        try:
            for i in layers:
                layer = self.layers[i]
                handles.append(layer.register_forward_pre_hook(on_input, with_kwargs=True))
                for part in _writers(layer):
                    handles.append(part.register_forward_hook(on_output))
            yield
        finally:
            for h in handles:
                h.remove()

    @contextlib.contextmanager
    def adding(self, vector: Vector, layer: int, scale: float) -> Iterator[None]:
        """Add ``scale * vector`` to the residual stream after ``layer``, at every position
        (activation addition, Arditi et al. 2024)."""
        torch = self._torch
        v = torch.tensor(vector * scale, dtype=torch.float32)

        def on_output(_module: Any, _inputs: Any, output: Any) -> Any:
            if isinstance(output, tuple):
                return (output[0] + v, *output[1:])
            return output + v

        handle = self.layers[layer].register_forward_hook(on_output)
        try:
            yield
        finally:
            handle.remove()


def decoder_layers(model: Any) -> list[Any]:
    """The model's decoder layers, in order (Llama, Mistral, Qwen, Gemma: ``model.layers``;
    GPT-2 style: ``transformer.h``; GPT-NeoX: ``gpt_neox.layers``)."""
    for path in (("model", "layers"), ("transformer", "h"), ("gpt_neox", "layers"), ("model", "decoder", "layers")):
        obj = model
        for name in path:
            obj = getattr(obj, name, None)
            if obj is None:
                break
        if obj is not None:
            return list(obj)
    raise BackendError(
        f"cannot find the decoder layers of a {type(model).__name__}",
        hint="diagnosis supports decoder-only models whose layers are model.layers, transformer.h or gpt_neox.layers",
    )


def _writers(layer: Any) -> list[Any]:
    """The sub-modules of a decoder layer that write into the residual stream (attention, MLP)."""
    found = [getattr(layer, name) for name in ("self_attn", "attn", "attention", "mlp") if hasattr(layer, name)]
    if not found:
        raise BackendError(f"cannot find the attention and MLP of a {type(layer).__name__}",
                           hint="diagnosis supports Llama-style decoder layers (self_attn, mlp)")
    return found
