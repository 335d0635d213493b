"""Models in and out: the base model, its LoRA adapter (new, continued or resumed), and loading a result.

A LoRA checkpoint holds only the adapter (`adapter_model.safetensors` + `adapter_config.json`); its
`base_model.json` names the base it applies to. A full fine-tuning checkpoint is a whole model.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from openft.train.config import SFTConfig
from openft.train.spec import ALL_LINEAR

if TYPE_CHECKING:
    from peft import LoraConfig

# PEFT is imported where a LoRA adapter is made or loaded: a full fine-tuning run never needs it, and
# its import adds to every job's start-up time.

BASE_MODEL_FILE = "base_model.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"


def load_tokenizer(path: str | Path) -> Any:
    return AutoTokenizer.from_pretrained(str(path))


def load_base_model(path: str | Path, device: torch.device | str = "cpu") -> Any:
    # fp32 weights: bf16, where it is used, is autocast for the matrix products (openft.train.precision).
    # No hub kernels: none is fetched offline, and with them transformers re-kernelizes the model at every
    # train()/eval() switch, which drops the training forwards installed on its layers (lean_layers).
    model: Any = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, use_kernels=False)
    return model.to(device)


def build_trainable_model(config: SFTConfig, device: torch.device, resume_from: Path | None = None) -> Any:
    """The model to train: the base (or a resumed full checkpoint), with a LoRA adapter if the method is LoRA.

    The adapter is a new one (seeded), the `init_adapter_path` one (continue fine-tuning) or the
    resumed checkpoint's.
    """
    if config.method == "full":
        return load_base_model(resume_from or config.base_model_path, device)
    from peft import PeftModel, get_peft_model

    base = load_base_model(config.base_model_path, device)
    adapter_dir = resume_from or (Path(config.init_adapter_path) if config.init_adapter_path else None)
    with _quiet_peft():
        if adapter_dir is not None:
            return PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=True)
        torch.manual_seed(config.seed)  # LoRA's A matrices start random: same seed, same start
        return get_peft_model(base, lora_config(config))


def lora_config(config: SFTConfig) -> LoraConfig:
    from peft import LoraConfig

    targets = config.lora_target_modules
    return LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=ALL_LINEAR if targets == [ALL_LINEAR] else list(targets),
        task_type="CAUSAL_LM",
    )


def save_model(model: Any, tokenizer: Any, out_dir: Path, config: SFTConfig) -> None:
    """The loadable part of a checkpoint: adapter or whole model, tokenizer, and where the base lives."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    reference = {"name": config.base_model_name, "path": config.base_model_path, "method": config.method}
    (out_dir / BASE_MODEL_FILE).write_text(json.dumps(reference, indent=2) + "\n")


def is_adapter_dir(path: Path) -> bool:
    return (path / ADAPTER_CONFIG_FILE).is_file()


def load_for_inference(checkpoint_dir: str | Path, *, device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) of a checkpoint as transformers models, for checks on a training result: the
    base with the adapter applied. Serving and evaluations use the inference engine (openft.inference)."""
    checkpoint_dir = Path(checkpoint_dir)
    if not is_adapter_dir(checkpoint_dir):
        model = load_base_model(checkpoint_dir, device)
        return model.eval(), load_tokenizer(checkpoint_dir)
    from peft import PeftModel

    base_path = base_model_path_of(checkpoint_dir)
    with _quiet_peft():
        model = PeftModel.from_pretrained(load_base_model(base_path, device), str(checkpoint_dir))
    has_tokenizer = (checkpoint_dir / "tokenizer_config.json").is_file()
    return model.eval(), load_tokenizer(checkpoint_dir if has_tokenizer else base_path)


@contextmanager
def _quiet_peft() -> Iterator[None]:
    # PEFT asks transformers a deprecated question (is_gradient_checkpointing); nothing for us to act on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def base_model_path_of(checkpoint_dir: Path) -> str:
    """The base model an adapter applies to: base_model.json, else PEFT's own record."""
    reference = checkpoint_dir / BASE_MODEL_FILE
    if reference.is_file():
        return str(json.loads(reference.read_text())["path"])
    adapter = json.loads((checkpoint_dir / ADAPTER_CONFIG_FILE).read_text())
    path = adapter.get("base_model_name_or_path")
    if not path:
        raise ValueError(f"{checkpoint_dir} does not say which base model it applies to")
    return str(path)
