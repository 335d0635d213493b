"""Checks a transformers model directory and reads what the catalog shows about it (no torch needed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openft.models.errors import InvalidModelError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
# Used when a model does not say its context length, and for hub models not yet on this machine.
FALLBACK_CONTEXT_LENGTH = 2048


@dataclass(frozen=True)
class ModelDir:
    path: Path
    context_length: int
    has_chat_template: bool


def inspect_model_dir(path: Path) -> ModelDir:
    """`path` as a loadable model: config.json, a tokenizer and weights, or InvalidModelError saying which
    is missing."""

    def reject(problem: str) -> InvalidModelError:
        return InvalidModelError(f"{path} {problem}", param="path")

    if not path.is_dir():
        raise reject("is not a directory")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise reject("has no config.json: expected a directory written by transformers' save_pretrained")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise reject(f"has a config.json that is not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise reject("has a config.json that is not a JSON object")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise reject(f"has no tokenizer (none of {', '.join(TOKENIZER_FILES)})")
    if not any(next(path.glob(pattern), None) for pattern in WEIGHT_PATTERNS):
        raise reject("has no weights (*.safetensors or pytorch_model*.bin)")
    tokenizer_config = _read_json_object(path / "tokenizer_config.json")
    return ModelDir(
        path=path,
        context_length=_context_length(config, tokenizer_config),
        has_chat_template=_has_chat_template(path, tokenizer_config),
    )


def count_parameters(path: Path) -> int | None:
    """The parameter count of the safetensors weights in `path`, read from the files' headers (no
    weights are loaded); None where the weights are in another format or unreadable."""
    total = 0
    shards = sorted(path.glob("*.safetensors"))
    if not shards:
        return None
    for shard in shards:
        try:
            with shard.open("rb") as file:
                header_size = int.from_bytes(file.read(8), "little")
                header = json.loads(file.read(header_size)) if 0 < header_size < 100_000_000 else None
        except (OSError, ValueError):
            return None
        if not isinstance(header, dict):
            return None
        for name, tensor in header.items():
            if name != "__metadata__" and isinstance(tensor, dict):
                n = 1
                for dim in tensor.get("shape", []):
                    n *= int(dim)
                total += n
    return total


def _context_length(config: dict[str, Any], tokenizer_config: dict[str, Any]) -> int:
    # Multimodal configs keep the language model's settings under text_config; GPT-2 says n_positions.
    for source in (config, config.get("text_config") or {}):
        for key in ("max_position_embeddings", "n_positions"):
            value = source.get(key)
            if isinstance(value, int) and value > 0:
                return value
    # Tokenizers without a limit store a huge placeholder (about 1e30) here.
    value = tokenizer_config.get("model_max_length")
    if isinstance(value, int) and 0 < value < 10_000_000:
        return value
    return FALLBACK_CONTEXT_LENGTH


def _has_chat_template(path: Path, tokenizer_config: dict[str, Any]) -> bool:
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    return bool(tokenizer_config.get("chat_template"))


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
