"""What an export starts from: a served model's directories, read without torch.

A fine-tuned model is either a LoRA adapter on a base (adapter dir + base dir) or a complete model
(a full fine-tune). `ExportSource` says which, from the same `ModelRef` the inference engine serves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from openft.errors import InvalidRequest
from openft.export import DEFAULT_GGUF_TYPE, FORMATS, GGUF_TYPES, MERGED_DTYPES
from openft.inference.model_dirs import BASE_MODEL_FILE
from openft.inference.types import ModelRef


@dataclass(frozen=True)
class ExportSource:
    name: str  # the model's name: ft:... or ft:...:ckpt-step-N
    model: ModelRef  # as the engine serves it
    base_name: str  # the catalog name of the base the model was trained from

    @property
    def is_adapter(self) -> bool:
        return self.model.adapter_path is not None

    @property
    def method(self) -> str:
        return "lora" if self.is_adapter else "full"


@dataclass(frozen=True)
class ExportRequest:
    format: str
    gguf_type: str = DEFAULT_GGUF_TYPE
    dtype: str = "auto"  # merged: the saved weights' dtype


def source_of(model: ModelRef, fallback_base_name: str) -> ExportSource:
    """The export source of a resolved model; its base's name comes from the checkpoint's own record."""
    record_dir = Path(model.adapter_path or model.weights_path)
    base_name = fallback_base_name
    record = record_dir / BASE_MODEL_FILE
    if record.is_file():
        base_name = str(json.loads(record.read_text()).get("name") or fallback_base_name)
    return ExportSource(name=model.name, model=model, base_name=base_name)


def checked_request(format: str, gguf_type: str | None = None, dtype: str | None = None) -> ExportRequest:
    """The request's options, each refused by name when it is not one of the known values."""
    _one_of(format, FORMATS, "format")
    _one_of(gguf_type or DEFAULT_GGUF_TYPE, GGUF_TYPES, "gguf_type")
    _one_of(dtype or "auto", MERGED_DTYPES, "dtype")
    return ExportRequest(format=format, gguf_type=gguf_type or DEFAULT_GGUF_TYPE, dtype=dtype or "auto")


def check_format_fits(source: ExportSource, request: ExportRequest) -> None:
    """A full fine-tune has no adapter: `peft` cannot describe it."""
    if request.format == "peft" and not source.is_adapter:
        raise InvalidRequest(
            f"The model `{source.name}` is a full fine-tune: it has no LoRA adapter to export as `peft`. "
            "Use format `merged` (complete weights) or `gguf` instead.",
            param="format",
        )


def _one_of(value: str, allowed: tuple[str, ...], param: str) -> None:
    if value not in allowed:
        raise InvalidRequest(
            f"Invalid value for '{param}': {value!r}. Use one of: {', '.join(allowed)}.", param=param
        )


def base_dir(source: ExportSource) -> Path | None:
    """The base model's directory: an adapter's weights path, or the base a full fine-tune records."""
    if source.is_adapter:
        return Path(source.model.weights_path)
    record = Path(source.model.weights_path) / BASE_MODEL_FILE
    if not record.is_file():
        return None
    path = json.loads(record.read_text()).get("path")
    return Path(path) if path else None
