"""The SFT recipe's configuration: hyperparameters as the API receives them, resolved into numbers.

`Hyperparameters` holds what a user asked for ("auto" or a number, OpenAI's names plus a few openft
extensions). `resolve_config` turns it into an `SFTConfig` with every value decided, which the recipe
saves next to every checkpoint and the worker echoes on the job. Nothing here imports torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from openft.models.defaults import PRETRAINED_DEFAULTS, TrainingDefaults

Auto = Literal["auto"]
Method = Literal["lora", "full"]

# OpenAI's epoch rule (cookbook data-prep notebook): aim for about 100 to 25,000 examples seen.
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25

# PEFT's shorthand for "every linear layer except the output layer".
ALL_LINEAR = "all-linear"

# Recipe constants that "auto" does not vary (documented in docs/training.md).
WARMUP_RATIO = 0.05
WEIGHT_DECAY = 0.0
MAX_GRAD_NORM = 1.0
LORA_DROPOUT = 0.0
N_EVALS_PER_RUN = 20
MIN_EVAL_EVERY_N_STEPS = 5
MIN_VALID_BATCH_EXAMPLES = 8
MAX_TOKENS_PER_MICRO_BATCH = 2048
PRECISIONS = ("auto", "bf16", "fp32")  # see openft.train.precision
# OpenAI documents only "above 0"; far beyond this every model diverges (docs/training.md).
MAX_LEARNING_RATE_MULTIPLIER = 100.0


class ConfigError(ValueError):
    """A hyperparameter or config value that cannot be used; the message says which and why.

    `field` names the hyperparameter at fault (None: no single one), for the API's error param."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Hyperparameters:
    """Hyperparameters as the API receives them: each one "auto" or a number.

    `lora_rank`, `full_finetune` and `max_seq_length` are openft extensions (None means "auto").
    """

    n_epochs: int | Auto = "auto"
    batch_size: int | Auto = "auto"
    learning_rate_multiplier: float | Auto = "auto"
    lora_rank: int | None = None
    full_finetune: bool | None = None
    max_seq_length: int | None = None

    def __post_init__(self) -> None:
        _check_auto_or_int("n_epochs", self.n_epochs, 1, 50)
        _check_auto_or_int("batch_size", self.batch_size, 1, 256)
        _check_multiplier(self.learning_rate_multiplier)
        if self.lora_rank is not None:
            _check_int("lora_rank", self.lora_rank, 1, 1024, nullable=True)
        if self.max_seq_length is not None:
            _check_int("max_seq_length", self.max_seq_length, 2, 1 << 20, nullable=True)
        if self.full_finetune is not None and not isinstance(self.full_finetune, bool):
            raise ConfigError(
                f"full_finetune must be true, false or null; got {_shown(self.full_finetune)}",
                "full_finetune",
            )
        if self.full_finetune and self.lora_rank is not None:
            raise ConfigError(
                "lora_rank and full_finetune exclude each other: choose LoRA or full fine-tuning",
                "lora_rank",
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Hyperparameters:
        """From the API's `hyperparameters` object; missing and null values mean "auto"."""
        values = {k: v for k, v in (values or {}).items() if v is not None}
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown hyperparameter(s): {', '.join(unknown)}", unknown[0])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    keep_last_n_checkpoints: int = 3
    # openft addition: gradient accumulation splits a step into micro-batches of at most this many tokens.
    max_tokens_per_micro_batch: int = field(default=MAX_TOKENS_PER_MICRO_BATCH)
    # openft addition: "auto" (bf16 mixed precision where the hardware multiplies bf16 fast), "bf16", "fp32".
    precision: str = "auto"

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


def auto_n_epochs(n_examples: int) -> int:
    """OpenAI's default epoch count: 3, more for small files and fewer for big ones."""
    if n_examples < 1:
        raise ConfigError("the training file has no examples")
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def resolve_config(
    hp: Hyperparameters,
    *,
    n_train_examples: int,
    base_model_name: str,
    base_model_path: str,
    defaults: TrainingDefaults | None,
    training_file: str,
    validation_file: str | None,
    output_dir: str,
    seed: int,
    init_adapter_path: str | None = None,
    context_length: int,
    precision: str = "auto",
) -> SFTConfig:
    """Decide every "auto". `defaults` is the base model's (None: a pretrained model, the usual LoRA recipe).

    Continuing from a LoRA adapter keeps that adapter's rank, alpha and target modules.
    """
    defaults = defaults or PRETRAINED_DEFAULTS
    adapter = read_adapter_config(Path(init_adapter_path)) if init_adapter_path else None
    method = _resolve_method(hp, defaults, continuing=adapter is not None)
    lora_rank = hp.lora_rank or defaults.lora_rank
    lora_alpha = defaults.lora_alpha if hp.lora_rank is None else _scaled_alpha(defaults, lora_rank)
    targets = [ALL_LINEAR]
    if adapter is not None:
        lora_rank, lora_alpha, targets = adapter
    n_epochs = auto_n_epochs(n_train_examples) if hp.n_epochs == "auto" else hp.n_epochs
    batch_size = defaults.batch_size if hp.batch_size == "auto" else hp.batch_size
    batch_size = min(batch_size, n_train_examples)  # a step never holds more than the whole file
    multiplier = 1.0 if hp.learning_rate_multiplier == "auto" else float(hp.learning_rate_multiplier)
    total_steps = n_epochs * math.ceil(n_train_examples / batch_size)
    return SFTConfig(
        base_model_path=base_model_path,
        base_model_name=base_model_name,
        init_adapter_path=init_adapter_path,
        training_file=training_file,
        validation_file=validation_file,
        output_dir=output_dir,
        n_epochs=n_epochs,
        batch_size=batch_size,
        learning_rate_multiplier=multiplier,
        learning_rate=defaults.learning_rate_for(method) * multiplier,
        method=method,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=LORA_DROPOUT,
        lora_target_modules=targets,
        max_seq_length=_resolve_max_seq_length(hp.max_seq_length, context_length),
        seed=seed,
        warmup_ratio=WARMUP_RATIO,
        weight_decay=WEIGHT_DECAY,
        max_grad_norm=MAX_GRAD_NORM,
        eval_every_n_steps=max(MIN_EVAL_EVERY_N_STEPS, math.ceil(total_steps / N_EVALS_PER_RUN)),
        n_valid_batch_examples=max(MIN_VALID_BATCH_EXAMPLES, batch_size),
        precision=precision,
    )


def read_adapter_config(adapter_dir: Path) -> tuple[int, int, list[str]]:
    """(rank, alpha, target modules) of a saved PEFT LoRA adapter."""
    path = adapter_dir / "adapter_config.json"
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{adapter_dir} is not a LoRA adapter: it has no adapter_config.json") from None
    targets = values.get("target_modules") or [ALL_LINEAR]
    targets = [targets] if isinstance(targets, str) else sorted(targets)
    return int(values["r"]), int(values["lora_alpha"]), targets


def _resolve_method(hp: Hyperparameters, defaults: TrainingDefaults, *, continuing: bool) -> Method:
    if continuing:
        if hp.full_finetune:
            raise ConfigError(
                "continuing from a LoRA adapter trains that adapter; full_finetune must not be set"
            )
        return "lora"
    if hp.full_finetune is not None:
        return "full" if hp.full_finetune else "lora"
    if hp.lora_rank is not None:
        return "lora"
    return defaults.method


def _scaled_alpha(defaults: TrainingDefaults, rank: int) -> int:
    # Keep the model's alpha/rank ratio, so the effective LoRA step size does not change with the rank.
    return max(1, round(rank * defaults.lora_alpha / defaults.lora_rank))


def _resolve_max_seq_length(requested: int | None, context_length: int) -> int:
    if requested is None:
        return context_length
    if requested > context_length:
        raise ConfigError(
            f"max_seq_length {requested} is longer than the model's context of {context_length} tokens"
        )
    return requested


def _check_auto_or_int(name: str, value: object, low: int, high: int) -> None:
    if value != "auto":
        _check_int(name, value, low, high, nullable=False)


def _check_int(name: str, value: object, low: int, high: int, *, nullable: bool) -> None:
    """Booleans are not integers here, and 2.0 is not one either: JSON says what the user meant."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        accepted = "null" if nullable else '"auto"'
        raise ConfigError(
            f"{name} must be {accepted} or an integer from {low} to {high}; got {_shown(value)}", name
        )


def _check_multiplier(value: object) -> None:
    if value == "auto":
        return
    # NaN fails every comparison and Infinity the upper bound: neither passes.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_LEARNING_RATE_MULTIPLIER
    ):
        raise ConfigError(
            'learning_rate_multiplier must be "auto" or a number above 0 and at most '
            f"{MAX_LEARNING_RATE_MULTIPLIER:g}; got {_shown(value)}",
            "learning_rate_multiplier",
        )


def _shown(value: object) -> str:
    """A value as the user wrote it in JSON (true, null, "x", Infinity), not as Python prints it."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    try:
        return json.dumps(value, allow_nan=False)[:80]
    except (TypeError, ValueError):  # not JSON (a library caller's object) or NaN deep inside
        return repr(value)[:80]


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
