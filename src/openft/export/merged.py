"""`merged`: the fine-tuned model as one complete transformers checkpoint.

A LoRA adapter is merged exactly: W' = W + (alpha/r) B A, computed in float32 on the base's weights,
then cast once to the saved dtype (the base's own unless asked otherwise). A full fine-tune is re-saved
as is (cast if asked). The tokenizer, its chat template and a generation config that stops at the end
of an assistant turn go beside the weights, so `from_pretrained(path)` needs nothing else.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from openft.data.render import stop_token_ids
from openft.export.source import ExportSource
from openft.inference.lora import read_adapter


def load_merged(source: ExportSource) -> Any:
    """The fine-tuned model as one plain transformers model in float32, adapter (if any) merged in."""
    from transformers import AutoModelForCausalLM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model: Any = AutoModelForCausalLM.from_pretrained(source.model.weights_path, dtype=torch.float32)
    model.eval()
    if source.model.adapter_path is not None:
        merge_adapter(model, Path(source.model.adapter_path))
    return model


def merge_adapter(model: Any, adapter_dir: Path) -> None:
    """Add each LoRA pair's product into the weight it adapts, in float32."""
    pairs = read_adapter(adapter_dir, torch.device("cpu"), torch.float32)
    with torch.no_grad():
        for module_path, (a_t, b_t_scaled) in pairs.items():
            linear = model.get_submodule(module_path)
            # a_t is A^T [in, r], b_t_scaled is (alpha/r) B^T [r, out]: their product is the delta^T.
            delta = (a_t @ b_t_scaled).t()
            weight = linear.weight
            weight.copy_((weight.float() + delta).to(weight.dtype))


def saved_dtype(source: ExportSource, requested: str) -> torch.dtype:
    """`requested`, or with "auto" the dtype the base's (or full fine-tune's) config.json names."""
    if requested != "auto":
        return getattr(torch, requested)  # type: ignore[no-any-return]
    config_path = Path(source.model.weights_path) / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    named = config.get("dtype") or config.get("torch_dtype") or "float32"
    dtype = getattr(torch, str(named), None)
    return dtype if isinstance(dtype, torch.dtype) else torch.float32


def export_merged(source: ExportSource, out_dir: Path, dtype: str = "auto") -> list[Path]:
    model = load_merged(source)
    target = saved_dtype(source, dtype)
    model.to(target)
    model.config.dtype = target
    tokenizer = load_tokenizer(source)
    model.generation_config = generation_config(model, tokenizer)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    save_tokenizer(tokenizer, out_dir)
    return sorted(p for p in out_dir.iterdir() if p.is_file())


def load_tokenizer(source: ExportSource) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source.model.tokenizer_path)


def save_tokenizer(tokenizer: Any, out_dir: Path) -> None:
    """The tokenizer files with the chat template (transformers writes it as chat_template.jinja)."""
    tokenizer.save_pretrained(str(out_dir))


def generation_config(model: Any, tokenizer: Any) -> Any:
    """The model's generation config, stopping where the server stops (the end-of-turn token and eos)."""
    config = model.generation_config
    config.eos_token_id = stop_token_ids(tokenizer)
    if tokenizer.pad_token_id is not None:
        config.pad_token_id = tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        config.bos_token_id = tokenizer.bos_token_id
    return config
