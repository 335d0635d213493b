"""The models and data the GPU check trains on: real architectures with random weights, built in code.

Real weights cannot reach the GPU machine (no registry there, 64 MiB per call), so the models are built
from their shapes with a seeded random init and openft's byte tokenizer (ids 0-258, well inside the
vocabulary). Speed does not depend on the weights' values.

- smollm2-135m: SmolLM2-135M's exact architecture (as in its released config and GGUF: 30 layers,
  hidden 576, MLP 1536, 9 heads, 3 KV heads, vocab 49152, tied embeddings, RoPE theta 100000,
  context 8192, RMSNorm eps 1e-5): 134,515,008 parameters.
- llama-1b: SmolLM2-1.7B's layer shapes (hidden 2048, MLP 8192, 32 heads) with 16 layers and 8 KV
  heads, as Llama 3.2 1B has them, and SmolLM2's vocabulary: 1,073,809,408 parameters.
- tiny: a few layers of the same kind, for the CPU smoke run.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILT_MARKER = "built"


@dataclass(frozen=True)
class Shape:
    hidden: int
    mlp: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    context: int
    rope_theta: float = 100000.0

    def n_parameters(self) -> int:
        """Tied embeddings counted once; RMSNorm weights included."""
        head_dim = self.hidden // self.heads
        attention = 2 * self.hidden * self.heads * head_dim + 2 * self.hidden * self.kv_heads * head_dim
        layer = attention + 3 * self.hidden * self.mlp + 2 * self.hidden
        return self.vocab * self.hidden + self.layers * layer + self.hidden

    def n_lora_parameters(self, rank: int) -> int:
        """LoRA on every linear layer but the output one: rank·(in + out) for each."""
        head_dim = self.hidden // self.heads
        q_out, kv_out = self.heads * head_dim, self.kv_heads * head_dim
        sides = (self.hidden + q_out) * 2 + (self.hidden + kv_out) * 2 + (self.hidden + self.mlp) * 3
        return self.layers * rank * sides


SHAPES = {
    "smollm2-135m": Shape(hidden=576, mlp=1536, layers=30, heads=9, kv_heads=3, vocab=49152, context=8192),
    "llama-1b": Shape(hidden=2048, mlp=8192, layers=16, heads=32, kv_heads=8, vocab=49152, context=8192),
    "tiny": Shape(hidden=64, mlp=128, layers=2, heads=4, kv_heads=2, vocab=320, context=512),
}


def build_model(name: str, out_dir: Path, device: str = "cpu") -> Path:
    """Write the model (bf16 safetensors: half the bytes to write and read) and its tokenizer, once."""
    if is_built(out_dir):
        return out_dir
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from openft.models.tokenizer import build_byte_tokenizer

    shape = SHAPES[name]
    tokenizer = build_byte_tokenizer(model_max_length=shape.context)
    config = LlamaConfig(
        vocab_size=shape.vocab,
        hidden_size=shape.hidden,
        intermediate_size=shape.mlp,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=shape.context,
        rope_theta=shape.rope_theta,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    with torch.device(device):  # a 1B model initializes in a blink on the GPU, in many seconds on a CPU
        model = LlamaForCausalLM(config)
    model.to(torch.bfloat16).save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    (out_dir / BUILT_MARKER).touch()  # last: a build cut short is not taken for a model
    return out_dir


def is_built(model_dir: Path) -> bool:
    return (model_dir / BUILT_MARKER).is_file()


# ---- data: chat examples of a chosen token length --------------------------------------------------

_WORD_TEXT = (
    "amber basin cedar delta ember fjord garnet harbor indigo juniper kelp lantern meadow nectar orbit "
    "pebble quartz raven saffron thistle umber violet willow yarrow zephyr"
)
WORDS = _WORD_TEXT.split()


def make_examples(n: int, min_tokens: int, max_tokens: int, seed: int) -> list[dict[str, Any]]:
    """`n` chat examples whose rendered length (byte tokenizer: one token per byte) is spread evenly
    between `min_tokens` and `max_tokens`; the answer (trained) is about half of each."""
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        budget = rng.randint(min_tokens, max_tokens) - 40  # the ChatML wrapping takes about 40
        words: list[str] = []
        while sum(len(w) + 1 for w in words) * 2 < budget:
            words.append(rng.choice(WORDS))
        question = "Reverse the order of these words: " + " ".join(words)
        examples.append(
            {
                "messages": [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": " ".join(reversed(words))},
                ]
            }
        )
    return examples


def write_examples(path: Path, examples: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(example) + "\n" for example in examples))
    return path


# ---- FLOPs -----------------------------------------------------------------------------------------


def train_flops_per_token(n_frozen: int, n_trained: int) -> int:
    """Matrix FLOPs per trained token, every parameter counted as a matrix product at every token.

    Forward 2 per parameter; backward 2 more for the input gradient through every layer, and 2 more for
    the gradient of each trained weight. Full fine-tuning: 6·N. LoRA: 4·N_frozen + 6·N_lora. Attention
    scores are not counted (the usual 6·N·T convention); openft computes the output layer only at
    trained positions, so for it this overstates the work by that layer's share at untrained ones.
    """
    return 4 * n_frozen + 6 * n_trained


def main() -> None:
    """python -m bench.gpu_models MODELS_DIR NAME [NAME ...]: build each model once (on the GPU if any)."""
    import sys

    import torch

    models_dir, names = Path(sys.argv[1]), sys.argv[2:]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    failed = 0
    for name in names:
        started = time.perf_counter()
        try:
            build_model(name, models_dir / name, device)
        except Exception as exc:  # the next model may still build
            print(f"{name}: {type(exc).__name__}: {exc}", flush=True)
            failed += 1
            continue
        print(
            f"{name}: {SHAPES[name].n_parameters():,} parameters in {models_dir / name} "
            f"({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
