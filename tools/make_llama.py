"""Build a randomly initialised Llama of about 1B parameters, for measuring the GPU path.

Why: the GPU path (``harness run --device cuda``) needs a model large enough that the
GPU's arithmetic, not Python, is the cost, on machines with no network. Nothing is
downloaded: the architecture is ``transformers.LlamaConfig`` (hidden 2048, 16 layers,
32 attention heads of head_dim 64, 8 KV heads, MLP 8192, tied embeddings: about 0.98B
parameters with this vocabulary), the tokenizer and chat template are the embedded
model's (``harness/assets/tiny-chat``, vocabulary 3000), and the weights come from a
seeded initialisation, so the same command builds the same bytes with the same torch.
The answers are noise; the speed and the run-to-run identity are what it measures.

    python tools/make_llama.py OUT            # ~1B, bfloat16 safetensors (about 2 GB)
    python tools/make_llama.py OUT --tiny     # a few hundred thousand parameters, for tests

The output folder is a ``save_pretrained`` folder that ``harness run --model OUT`` loads.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOKENIZER_DIR = REPO / "harness" / "assets" / "tiny-chat"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")

FULL = {"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
        "head_dim": 64, "intermediate_size": 8192}
"""About 1B parameters (Llama-3.2-1B's shape, with the embedded tokenizer's vocabulary)."""
TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
        "head_dim": 32, "intermediate_size": 128}


def build(out: Path, *, tiny: bool = False, seed: int = 20261203, dtype: str | None = None) -> int:
    """Write the model to ``out`` (replacing what is there); returns its parameter count."""
    import json

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()
    tok_cfg = json.loads((TOKENIZER_DIR / "config.json").read_text(encoding="utf-8"))
    shape = TINY if tiny else FULL
    dtype = dtype or ("float32" if tiny else "bfloat16")
    config = LlamaConfig(
        vocab_size=tok_cfg["vocab_size"], max_position_embeddings=4096, rms_norm_eps=1e-5,
        bos_token_id=tok_cfg["bos_token_id"], eos_token_id=tok_cfg["eos_token_id"],
        pad_token_id=tok_cfg["pad_token_id"], tie_word_embeddings=True, initializer_range=0.02, **shape,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    model.eval()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model.save_pretrained(out, safe_serialization=True)
    for name in _TOKENIZER_FILES:  # the embedded model's tokenizer, template and greedy decoding
        if (TOKENIZER_DIR / name).is_file():
            shutil.copyfile(TOKENIZER_DIR / name, out / name)
    (out / "README.md").write_text(
        f"Randomly initialised Llama ({'tiny' if tiny else 'about 1B parameters'}), seed {seed}, {dtype}; "
        "built by tools/make_llama.py for measurements. Its answers are noise.\n", encoding="utf-8")
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="output folder (replaced)")
    ap.add_argument("--tiny", action="store_true", help="a tiny model of the same architecture, for tests")
    ap.add_argument("--seed", type=int, default=20261203, help="initialisation seed")
    ap.add_argument("--dtype", choices=["float32", "bfloat16", "float16"],
                    help="stored dtype (default: bfloat16, float32 with --tiny)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    n = build(args.out, tiny=args.tiny, seed=args.seed, dtype=args.dtype)
    print(f"built {args.out}: {n / 1e6:.1f}M parameters in {time.perf_counter() - start:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
