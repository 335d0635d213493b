"""Built-in base models: small Llama-architecture models with a random init, built in code, offline.

They exist so that openft works (and its tests run) on a machine with no network and no GPU. Weights
come from a fixed seed, drawn per parameter name, so every build gives the same bytes.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openft.models.defaults import TrainingDefaults
from openft.models.tokenizer import VOCAB_SIZE, build_byte_tokenizer

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM

MANIFEST_NAME = "openft_builtin.json"
INIT_STD = 0.02


@dataclass(frozen=True)
class BuiltinSpec:
    name: str
    description: str
    hidden_size: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    intermediate_size: int
    context_length: int
    seed: int
    # When this definition was introduced (unix seconds): the same on every machine, unlike a build time.
    created_at: int
    defaults: TrainingDefaults

    @property
    def n_parameters(self) -> int:
        """Parameter count, computed without building (embeddings are tied to the output layer)."""
        head_dim = self.hidden_size // self.n_heads
        attention = (
            2 * self.hidden_size * self.hidden_size + 2 * self.hidden_size * self.n_kv_heads * head_dim
        )
        mlp = 3 * self.hidden_size * self.intermediate_size
        per_layer = attention + mlp + 2 * self.hidden_size
        return VOCAB_SIZE * self.hidden_size + self.n_layers * per_layer + self.hidden_size


# A random init knows nothing worth keeping, so "auto" means full fine-tuning at a from-scratch learning
# rate, one example per step (a short CPU run needs steps more than it needs big batches). LoRA works too
# if asked for, at a larger rate. Measured in docs/models.md.
BUILTIN_MODELS: dict[str, BuiltinSpec] = {
    spec.name: spec
    for spec in (
        BuiltinSpec(
            name="openft-tiny",
            description="untrained 2M-parameter Llama (random weights: it only learns what you teach it), "
            "for tests and quick demos",
            hidden_size=256,
            n_layers=2,
            n_heads=4,
            n_kv_heads=2,
            intermediate_size=1024,
            context_length=2048,
            seed=1,
            created_at=1795737600,
            defaults=TrainingDefaults(
                method="full",
                full_learning_rate=3e-4,
                lora_learning_rate=3e-3,
                lora_rank=16,
                lora_alpha=32,
                batch_size=1,
            ),
        ),
        BuiltinSpec(
            name="openft-small",
            description="untrained 25M-parameter Llama (random weights: it only learns what you teach it), "
            "for longer offline experiments",
            hidden_size=512,
            n_layers=8,
            n_heads=8,
            n_kv_heads=4,
            intermediate_size=1536,
            context_length=2048,
            seed=2,
            created_at=1795737600,
            defaults=TrainingDefaults(
                method="full",
                full_learning_rate=5e-4,
                lora_learning_rate=2e-3,
                lora_rank=16,
                lora_alpha=32,
                batch_size=1,
            ),
        ),
    )
}


def builtin_spec(name: str) -> BuiltinSpec:
    """The spec of a built-in model; KeyError for any other name."""
    return BUILTIN_MODELS[name]


def build_builtin_model(name: str, out_dir: Path) -> None:
    """Write the model, tokenizer and a manifest into `out_dir` (created if missing)."""
    from transformers.utils import logging as hf_logging

    spec = builtin_spec(name)
    tokenizer = build_byte_tokenizer(model_max_length=spec.context_length)
    model = _new_model(spec, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A one-shard save needs no progress bar on the user's terminal.
    showed_progress = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(out_dir)
    finally:
        if showed_progress:
            hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(out_dir)
    manifest = {"name": spec.name, "n_parameters": spec.n_parameters, "created_at": spec.created_at}
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def ensure_builtin_model(name: str, models_dir: Path) -> Path:
    """The directory of built-in model `name` under `models_dir`, built on first use.

    The build goes to a temporary directory that is renamed into place, so a reader never sees a half
    written model and two processes racing both end up with one complete copy.
    """
    builtin_spec(name)
    final_dir = models_dir / name
    if is_built(final_dir):
        return final_dir
    models_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".building", dir=models_dir))
    try:
        build_builtin_model(name, work_dir)
        try:
            work_dir.rename(final_dir)
        except OSError:
            if not is_built(final_dir):  # not a racing twin: something else is in the way
                raise FileExistsError(
                    f"{final_dir} exists but is not a complete built-in model; remove it and try again"
                ) from None
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return final_dir


def is_built(model_dir: Path) -> bool:
    # The manifest is written last and the directory appears by rename, so its presence means complete.
    return (model_dir / MANIFEST_NAME).is_file()


def _new_model(spec: BuiltinSpec, *, eos_token_id: int, pad_token_id: int) -> LlamaForCausalLM:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.n_layers,
        num_attention_heads=spec.n_heads,
        num_key_value_heads=spec.n_kv_heads,
        max_position_embeddings=spec.context_length,
        initializer_range=INIT_STD,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        dtype="float32",
    )
    # transformers initialises the new model from torch's global generator first: keep that private.
    with torch.random.fork_rng(devices=[]):
        model = LlamaForCausalLM(config)
    _init_weights(model, spec)
    model.generation_config.eos_token_id = eos_token_id
    model.generation_config.pad_token_id = pad_token_id
    return model


def _init_weights(model: LlamaForCausalLM, spec: BuiltinSpec) -> None:
    """Normal(0, 0.02) weights and unit norms, each tensor from its own generator seeded by its name.

    Seeding per name keeps the weights independent of parameter order and of transformers' own init code.
    The residual projections are scaled down by sqrt(2 * layers) so a fresh stack starts stable.
    """
    import torch

    residual_std = INIT_STD / math.sqrt(2 * spec.n_layers)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.fill_(1.0)
                continue
            generator = torch.Generator().manual_seed(zlib.crc32(f"{spec.seed}:{name}".encode()))
            std = residual_std if name.endswith(("o_proj.weight", "down_proj.weight")) else INIT_STD
            param.copy_(torch.randn(param.shape, generator=generator, dtype=torch.float32) * std)
