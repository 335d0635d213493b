"""A recipe's configuration (supervised or DPO): every value decided, saved next to every checkpoint.

`openft.train.spec` resolves a job's hyperparameters into an `SFTConfig`; the recipe reads nothing else,
and the worker echoes it on the job. Nothing here imports torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from openft.models.defaults import Method
from openft.train.spec import (
    JOB_METHODS,
    KEEP_CHECKPOINTS,
    MAX_BETA,
    MAX_SFT_WEIGHT,
    ConfigError,
    RunLayout,
)

MAX_TOKENS_PER_MICRO_BATCH = 2048
PRECISIONS = ("auto", "bf16", "fp32")  # see openft.train.precision

__all__ = ["ConfigError", "SFTConfig"]


@dataclass
class SFTConfig:
    """Everything one supervised fine-tuning run needs, fully resolved. Saved as JSON with each checkpoint."""

    base_model_path: str
    base_model_name: str
    init_adapter_path: str | None
    training_file: str
    validation_file: str | None
    output_dir: str
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    learning_rate: float  # the model's base learning rate for `method` times the multiplier
    method: Method
    lora_rank: int
    lora_alpha: int
    lora_dropout: float
    lora_target_modules: list[str]
    max_seq_length: int
    seed: int
    warmup_ratio: float
    weight_decay: float
    max_grad_norm: float
    eval_every_n_steps: int
    n_valid_batch_examples: int
    keep_last_n_checkpoints: int = KEEP_CHECKPOINTS
    # openft addition: gradient accumulation splits a step into micro-batches of at most this many tokens.
    max_tokens_per_micro_batch: int = field(default=MAX_TOKENS_PER_MICRO_BATCH)
    # openft addition: "auto" (bf16 mixed precision where the hardware multiplies bf16 fast), "bf16", "fp32".
    precision: str = "auto"
    # The job's method.type: which recipe runs ("supervised": openft.train.sft, "dpo": openft.train.dpo).
    training_method: str = "supervised"
    # DPO only: how far the policy may move from the reference (the sigmoid loss's temperature).
    beta: float | None = None
    # DPO only: the weight of the supervised loss on the preferred outputs added to DPO's (0: plain DPO).
    sft_weight: float = 0.0
    # Reinforcement only: the grader (OpenAI's JSON, checked) and the sampling settings, as
    # openft.train.spec.resolve_reinforcement decides them.
    reinforcement: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.method not in ("lora", "full"):
            raise ConfigError(f"method must be 'lora' or 'full', got {self.method!r}")
        if self.method == "full" and self.init_adapter_path:
            raise ConfigError(
                "init_adapter_path continues a LoRA adapter; it cannot be used with method 'full'"
            )
        for name in (
            "n_epochs",
            "batch_size",
            "max_seq_length",
            "eval_every_n_steps",
            "n_valid_batch_examples",
        ):
            _check_positive_int(name, getattr(self, name))
        _check_positive_int("keep_last_n_checkpoints", self.keep_last_n_checkpoints)
        _check_positive_int("max_tokens_per_micro_batch", self.max_tokens_per_micro_batch)
        if self.training_method not in JOB_METHODS:
            raise ConfigError(
                f"training_method must be one of {', '.join(JOB_METHODS)}, got {self.training_method!r}"
            )
        if self.training_method == "dpo" and not (
            isinstance(self.beta, int | float) and 0 < self.beta <= MAX_BETA
        ):
            raise ConfigError(f"beta must be a number above 0 and at most {MAX_BETA:g}, got {self.beta!r}")
        if not (isinstance(self.sft_weight, int | float) and 0 <= self.sft_weight <= MAX_SFT_WEIGHT):
            raise ConfigError(
                f"sft_weight must be a number from 0 to {MAX_SFT_WEIGHT:g}, got {self.sft_weight!r}"
            )
        if self.training_method == "reinforcement" and not (
            isinstance(self.reinforcement, dict) and isinstance(self.reinforcement.get("grader"), dict)
        ):
            raise ConfigError("a reinforcement run needs its grader and sampling settings")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.method == "lora":
            _check_positive_int("lora_rank", self.lora_rank)
            _check_positive_int("lora_alpha", self.lora_alpha)
            if not self.lora_target_modules:
                raise ConfigError(
                    "lora_target_modules is empty: name the modules LoRA adapts, or 'all-linear'"
                )
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"learning_rate must be a finite number above 0, got {self.learning_rate!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        if self.weight_decay < 0 or self.max_grad_norm <= 0:
            raise ConfigError("weight_decay must be >= 0 and max_grad_norm > 0")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SFTConfig:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"the config is not valid JSON: {exc}") from None
        if not isinstance(values, dict):
            raise ConfigError("the config must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        try:
            return cls(**values)
        except TypeError as exc:  # a required field is missing
            raise ConfigError(f"incomplete config: {exc}") from None

    @classmethod
    def load(cls, path: Path) -> SFTConfig:
        return cls.from_json(path.read_text())

    @property
    def layout(self) -> RunLayout:
        return RunLayout(Path(self.output_dir))


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
