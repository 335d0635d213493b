"""What a fine-tuned model's directory holds, read without torch (the API resolves names with it).

A LoRA checkpoint has `adapter_config.json` and a `base_model.json` naming its base; anything else
is a complete model (a full fine-tune) that is served on its own. Layout: openft.train.checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ADAPTER_CONFIG_FILE = "adapter_config.json"
BASE_MODEL_FILE = "base_model.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


@dataclass(frozen=True)
class ModelDir:
    weights_path: str  # the base model's directory for an adapter, else the model's own
    adapter_path: str | None
    tokenizer_path: str


def describe(path: Path) -> ModelDir:
    """Raises FileNotFoundError when the directory or what it refers to is missing."""
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist")
    own_tokenizer = (path / "tokenizer_config.json").is_file()
    if not (path / ADAPTER_CONFIG_FILE).is_file():
        return ModelDir(weights_path=str(path), adapter_path=None, tokenizer_path=str(path))
    base = base_path_of(path)
    return ModelDir(
        weights_path=base, adapter_path=str(path), tokenizer_path=str(path) if own_tokenizer else base
    )


def base_path_of(adapter_dir: Path) -> str:
    """The base an adapter applies to: openft's base_model.json, else PEFT's own record."""
    reference = adapter_dir / BASE_MODEL_FILE
    if reference.is_file():
        return str(json.loads(reference.read_text())["path"])
    config = json.loads((adapter_dir / ADAPTER_CONFIG_FILE).read_text())
    base = config.get("base_model_name_or_path")
    if not base:
        raise FileNotFoundError(f"{adapter_dir} does not say which base model it applies to")
    return str(base)


def adapter_bytes(adapter_dir: str) -> int:
    """What an adapter costs the adapter cache: the size of its weights file."""
    for name in ADAPTER_WEIGHTS:
        weights = Path(adapter_dir) / name
        if weights.is_file():
            return weights.stat().st_size
    return 0
