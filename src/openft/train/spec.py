"""The job spec: what a fine-tuning job asks for, turned into a recipe config with every value decided.

The one place that knows, without torch:
- each method's hyperparameters as the wire sends them ("auto" or a number; OpenAI's names plus
  openft's extensions), their checks, and `HyperparameterError` naming the one at fault;
- the "auto" rules (epochs from the example count, batch size and learning rate from the base model's
  defaults, LoRA or full, the sequence length from the context);
- how training examples are counted, and each base model's defaults, found through the models catalog;
- the run's layout on disk (`RunLayout`): checkpoint directories, their files, final/, results.csv.

Services (job creation and file validation), the worker, `openft train` and the data-scaling
experiment all call it. A new method (dpo, reinforcement) adds its hyperparameters class, a branch in
`parse_hyperparameters` and a resolver in `resolve_job`, next to the supervised ones.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from openft.data.epochs import auto_epochs
from openft.data.lines import BadLine, iter_json_lines
from openft.models.catalog import Catalog
from openft.models.defaults import PRETRAINED_DEFAULTS, Method, TrainingDefaults

if TYPE_CHECKING:  # config.py imports this module's constants; the resolvers import it when they run
    from openft.train.config import SFTConfig

Auto = Literal["auto"]
JobMethod = Literal["supervised", "dpo", "reinforcement"]
JOB_METHODS: tuple[JobMethod, ...] = get_args(JobMethod)

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
# The newest epoch checkpoints a run keeps on disk, and a job lists (older ones are deleted).
KEEP_CHECKPOINTS = 3
# OpenAI documents only "above 0"; far beyond this every model diverges (docs/training.md).
MAX_LEARNING_RATE_MULTIPLIER = 100.0
# DPO: OpenAI's range for beta, and what "auto" means (the value the DPO paper and most recipes use).
MAX_BETA = 2.0
DEFAULT_BETA = 0.1
# DPO: the weight of the supervised loss on the preferred outputs that "auto" adds to DPO's (RPO), and
# the most a job may ask. With it, a LoRA adapter learnt a behaviour that greedy answers show (0 -> 100 %
# of held-out answers signed); without it, none did at any learning rate (docs/training.md).
DEFAULT_SFT_WEIGHT = 1.0
MAX_SFT_WEIGHT = 10.0
# DPO's learning rate without the supervised term, relative to supervised training's for the same model
# and method: pure DPO moves an already sensible model, and at the supervised rate it over-optimises
# within an epoch. With the term the preferred outputs anchor it, and it trains at the supervised rate.
DPO_LEARNING_RATE_FACTOR = 0.1
# Reinforcement: the temperature answers are sampled at. At 1.0 a small model's samples are mostly noise
# (smollm2-135m-instruct answered a factual question right 28% of the time at 1.0, 50% at 0.7), so the
# group's rewards would say little about what to reinforce.
SAMPLING_TEMPERATURE = 0.7
# Reinforcement: answers sampled per prompt at compute_multiplier 1 (a group: advantages are relative to
# it), the KL penalty's weight, the learning rate relative to supervised training's, and how long a
# sampled answer may be at each reasoning_effort (a model without reasoning modes spends the effort on
# the answer's length).
GROUP_SIZE = 4
MAX_GROUP_SIZE = 16
KL_COEF = 0.04
RL_LEARNING_RATE_FACTOR = 0.1
ANSWER_TOKENS = {"default": 128, "low": 32, "medium": 128, "high": 256}
REASONING_EFFORTS = tuple(ANSWER_TOKENS)
EVAL_SAMPLES = 16


class ConfigError(ValueError):
    """A hyperparameter or config value that cannot be used; the message says which and why.

    `field` names the hyperparameter at fault (None: no single one)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class HyperparameterError(ConfigError):
    """A requested hyperparameter that cannot be used, refused before any file is read."""

    def param_at(self, where: str) -> str:
        """The API error's `param`: the hyperparameter under `where` (the request's hyperparameters)."""
        return f"{where}.{self.field}" if self.field else where


# --- the run's files -------------------------------------------------------------------------------

CONFIG_FILE = "openft_config.json"  # in each checkpoint: the resolved recipe config
CHECKPOINT_FILE = "checkpoint.json"  # in each checkpoint: {"step", "epoch", "kind", "metrics"}
STATE_FILE = "trainer_state.pt"  # in each checkpoint: what a resume needs; never in final/
STEP_PREFIX = "step-"


@dataclass(frozen=True)
class RunLayout:
    """Where one run keeps its files, under its output directory (see openft.train.checkpoints)."""

    output_dir: Path

    @property
    def checkpoints_dir(self) -> Path:
        return self.output_dir / "checkpoints"

    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints_dir / f"{STEP_PREFIX}{step}"

    def checkpoint_dirs(self) -> list[Path]:
        """Every `step-<N>` directory (whole or not), in no particular order."""
        return [p for p in self.checkpoints_dir.glob(f"{STEP_PREFIX}*") if step_of(p) is not None]

    def latest_resumable(self) -> Path | None:
        """The newest checkpoint that holds a trainer state, or None."""
        resumable = [p for p in self.checkpoint_dirs() if (p / STATE_FILE).exists()]
        return max(resumable, key=lambda p: step_of(p) or 0) if resumable else None

    @property
    def final_dir(self) -> Path:
        return self.output_dir / "final"

    @property
    def results_file(self) -> Path:
        return self.output_dir / "results.csv"

    @property
    def control_file(self) -> Path:
        """Holds `cancel` or `pause` when the worker wants the recipe to stop between steps."""
        return self.output_dir / "control"

    @property
    def config_file(self) -> Path:
        """The resolved config of a job's run, as the worker wrote it before starting the recipe."""
        return self.output_dir / "config.json"


def step_of(checkpoint: Path) -> int | None:
    """N of a `step-<N>` directory; None for anything else (such as a `.partial` one being written)."""
    number = checkpoint.name.removeprefix(STEP_PREFIX)
    return int(number) if checkpoint.name.startswith(STEP_PREFIX) and number.isdigit() else None


# --- hyperparameters as a job asks for them --------------------------------------------------------


@dataclass
class SupervisedHyperparameters:
    """The supervised method's hyperparameters as requested: each one "auto" or a number.

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
            raise HyperparameterError(
                f"full_finetune must be true, false or null; got {_shown(self.full_finetune)}",
                "full_finetune",
            )
        if self.full_finetune and self.lora_rank is not None:
            raise HyperparameterError(
                "lora_rank and full_finetune exclude each other: choose LoRA or full fine-tuning",
                "lora_rank",
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> SupervisedHyperparameters:
        """From the API's `hyperparameters` object; missing and null values mean "auto"."""
        values = {k: v for k, v in (values or {}).items() if v is not None}
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise HyperparameterError(f"unknown hyperparameter(s): {', '.join(unknown)}", unknown[0])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PreferenceHyperparameters(SupervisedHyperparameters):
    """`method.dpo.hyperparameters`: the supervised ones (and openft's extensions) plus `beta`, and
    openft's `sft_weight` (None means DEFAULT_SFT_WEIGHT; 0 is plain DPO)."""

    beta: Auto | float = "auto"
    sft_weight: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        beta = self.beta
        if beta != "auto" and (
            isinstance(beta, bool) or not isinstance(beta, int | float) or not 0 < beta <= MAX_BETA
        ):
            raise HyperparameterError(
                f'beta must be "auto" or a number above 0 and at most {MAX_BETA:g}; got {_shown(beta)}',
                "beta",
            )
        weight = self.sft_weight
        if weight is not None and (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not 0 <= weight <= MAX_SFT_WEIGHT  # also false for NaN
        ):
            raise HyperparameterError(
                f"sft_weight must be null or a number from 0 (plain DPO) to {MAX_SFT_WEIGHT:g}; "
                f"got {_shown(weight)}",
                "sft_weight",
            )


@dataclass
class ReinforcementHyperparameters(SupervisedHyperparameters):
    """`method.reinforcement.hyperparameters`: the supervised ones plus OpenAI's four for RFT."""

    compute_multiplier: Auto | float = "auto"
    eval_interval: Auto | int = "auto"
    eval_samples: Auto | int = "auto"
    reasoning_effort: str = "default"

    def __post_init__(self) -> None:
        super().__post_init__()
        value = self.compute_multiplier
        if value != "auto" and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 1e-5 < value <= 10
        ):
            raise HyperparameterError(
                'compute_multiplier must be "auto" or a number above 0.00001 and at most 10; '
                f"got {_shown(value)}",
                "compute_multiplier",
            )
        _check_auto_or_int("eval_interval", self.eval_interval, 1, 1 << 20)
        _check_auto_or_int("eval_samples", self.eval_samples, 1, 1 << 20)
        if self.reasoning_effort not in REASONING_EFFORTS:
            raise HyperparameterError(
                f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}; "
                f"got {_shown(self.reasoning_effort)}",
                "reasoning_effort",
            )
        if self.full_finetune:
            raise HyperparameterError(
                "reinforcement fine-tuning trains a LoRA adapter (its reference is the model with the "
                "adapter disabled): leave full_finetune unset",
                "full_finetune",
            )


def parse_hyperparameters(method: JobMethod, values: dict[str, Any] | None) -> SupervisedHyperparameters:
    """A job's hyperparameters, checked; HyperparameterError names the one at fault."""
    if method == "supervised":
        return SupervisedHyperparameters.from_dict(values)
    if method == "dpo":
        return PreferenceHyperparameters.from_dict(values)
    return ReinforcementHyperparameters.from_dict(values)


def resolved_hyperparameters(
    requested: dict[str, Any],
    *,
    defaults: TrainingDefaults,
    n_train_examples: int,
    method: JobMethod = "supervised",
) -> dict[str, Any]:
    """What a job echoes once its files are validated: the request with OpenAI's "auto" values decided
    (the other extensions stay as asked; the recipe decides them from the model)."""
    hp = parse_hyperparameters(method, requested)
    resolved = dict(requested)
    if isinstance(hp, PreferenceHyperparameters):
        resolved["beta"] = _beta(hp)
    if isinstance(hp, ReinforcementHyperparameters):
        batch = min(_batch_size(hp, defaults, n_train_examples), max(1, n_train_examples))
        resolved |= _reinforcement_values(hp, n_train_examples, batch)
    if hp.n_epochs == "auto":
        resolved["n_epochs"] = _n_epochs(hp, n_train_examples)
    if hp.batch_size == "auto":
        resolved["batch_size"] = _batch_size(hp, defaults, n_train_examples)
    if hp.learning_rate_multiplier == "auto":
        resolved["learning_rate_multiplier"] = _multiplier(hp)
    return resolved


# --- base models and examples ----------------------------------------------------------------------


@dataclass(frozen=True)
class BaseModelFacts:
    """What resolution needs of a base model. `path()` builds a built-in model (or fetches a hub one)
    on first use, so a caller that needs only the defaults never does."""

    name: str
    defaults: TrainingDefaults
    context_length: int
    _locate: Callable[[], Path] = field(repr=False, compare=False)

    def path(self) -> Path:
        return self._locate()


def find_base_model(models_dir: Path, name: str, *, directory_ok: bool = False) -> BaseModelFacts:
    """A catalog model by name; with `directory_ok` (the command line), a model directory too (a
    pretrained model of unknown size: the pretrained defaults). Raises the catalog's errors."""
    catalog = Catalog(models_dir)
    if directory_ok:
        found = catalog.resolve_spec(name)
        return BaseModelFacts(
            found.name, found.defaults or PRETRAINED_DEFAULTS, found.context_length, lambda: found.path
        )
    entry = catalog.get(name)
    locate = functools.partial(catalog.resolve_path, entry.name)
    return BaseModelFacts(entry.name, entry.defaults or PRETRAINED_DEFAULTS, entry.context_length, locate)


def count_examples(path: Path) -> int:
    """The training examples of a JSONL file: its non-blank lines that hold JSON (the data check
    refuses a job's file with any other line, so there this is every non-blank line)."""
    return sum(1 for _, value in iter_json_lines(path) if not isinstance(value, BadLine))


# --- resolution ------------------------------------------------------------------------------------


def resolve_job(
    method: JobMethod,
    hyperparameters: dict[str, Any] | SupervisedHyperparameters,
    *,
    base: BaseModelFacts,
    training_file: Path,
    validation_file: Path | None,
    output_dir: Path,
    seed: int,
    init_adapter_path: str | None = None,
    precision: str = "auto",
    grader: dict[str, Any] | None = None,
    judges: dict[str, dict[str, Any]] | None = None,
    response_format: dict[str, Any] | None = None,
) -> SFTConfig:
    """A job's recipe config: its method's hyperparameters resolved against the base model and the
    training file (and, for reinforcement, its grader and the judge models it asks, as the engine loads
    them). `init_adapter_path` continues a fine-tuned model: a LoRA adapter, or the directory of a fully
    fine-tuned model (then that is the new base)."""
    hp = (
        hyperparameters
        if isinstance(hyperparameters, SupervisedHyperparameters)
        else parse_hyperparameters(method, hyperparameters)
    )
    base_model_path = str(base.path())
    if init_adapter_path and not (Path(init_adapter_path) / "adapter_config.json").exists():
        base_model_path, init_adapter_path = init_adapter_path, None
    config = resolve_supervised(
        hp,
        n_train_examples=count_examples(training_file),
        base_model_name=base.name,
        base_model_path=base_model_path,
        defaults=base.defaults,
        training_file=str(training_file),
        validation_file=str(validation_file) if validation_file else None,
        output_dir=str(output_dir),
        seed=seed,
        init_adapter_path=init_adapter_path,
        context_length=base.context_length,
        precision=precision,
    )
    if isinstance(hp, PreferenceHyperparameters):
        return resolve_preference(config, hp)
    if isinstance(hp, ReinforcementHyperparameters):
        return resolve_reinforcement(
            config, hp, grader=grader, judges=judges, response_format=response_format
        )
    return config


def resolve_reinforcement(
    supervised: SFTConfig,
    hp: ReinforcementHyperparameters,
    *,
    grader: dict[str, Any] | None,
    judges: dict[str, dict[str, Any]] | None = None,
    response_format: dict[str, Any] | None = None,
) -> SFTConfig:
    """The reinforcement recipe's config: the supervised resolution (epochs, batch, LoRA, lengths) at
    the RL learning rate, with the grader and the sampling settings decided. `response_format`: what
    every sampled answer follows (as in chat requests), None for free text."""
    if grader is None:
        raise ConfigError("a reinforcement job needs its grader", "grader")
    values = _reinforcement_values(hp, count_examples(Path(supervised.training_file)), supervised.batch_size)
    group = group_size(values["compute_multiplier"])
    return replace(
        supervised,
        training_method="reinforcement",
        learning_rate=supervised.learning_rate * RL_LEARNING_RATE_FACTOR,
        reinforcement={
            "grader": grader,
            "group_size": group,
            "max_new_tokens": ANSWER_TOKENS[hp.reasoning_effort],
            "temperature": SAMPLING_TEMPERATURE,
            "kl_coef": KL_COEF,
            "eval_interval": values["eval_interval"],
            "eval_samples": values["eval_samples"],
            "judges": judges or {},
            "response_format": response_format,
        },
    )


def group_size(compute_multiplier: float) -> int:
    """Answers sampled per prompt: GROUP_SIZE × compute_multiplier, at least 2 (a group to compare)."""
    return max(2, min(MAX_GROUP_SIZE, round(GROUP_SIZE * compute_multiplier)))


def _reinforcement_values(
    hp: ReinforcementHyperparameters, n_train_examples: int, batch_size: int
) -> dict[str, Any]:
    """OpenAI's four reinforcement hyperparameters decided: "auto" evaluates once an epoch, on up to
    EVAL_SAMPLES validation prompts."""
    steps_per_epoch = max(1, math.ceil(n_train_examples / batch_size))
    return {
        "compute_multiplier": 1.0 if hp.compute_multiplier == "auto" else float(hp.compute_multiplier),
        "eval_interval": steps_per_epoch if hp.eval_interval == "auto" else hp.eval_interval,
        "eval_samples": EVAL_SAMPLES if hp.eval_samples == "auto" else hp.eval_samples,
        "reasoning_effort": hp.reasoning_effort,
    }


def resolve_preference(supervised: SFTConfig, hp: PreferenceHyperparameters) -> SFTConfig:
    """The DPO recipe's config: the supervised resolution (epochs, batch, LoRA or full, lengths), with
    beta and the supervised term's weight decided, at the supervised learning rate with that term and
    at DPO_LEARNING_RATE_FACTOR of it without."""
    sft_weight = _sft_weight(hp)
    return replace(
        supervised,
        training_method="dpo",
        beta=_beta(hp),
        sft_weight=sft_weight,
        learning_rate=supervised.learning_rate * (1.0 if sft_weight else DPO_LEARNING_RATE_FACTOR),
    )


def resolve_supervised(
    hp: SupervisedHyperparameters,
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
    from openft.train.config import SFTConfig

    defaults = defaults or PRETRAINED_DEFAULTS
    adapter = read_adapter_config(Path(init_adapter_path)) if init_adapter_path else None
    method = _resolve_method(hp, defaults, continuing=adapter is not None)
    lora_rank = hp.lora_rank or defaults.lora_rank
    lora_alpha = defaults.lora_alpha if hp.lora_rank is None else _scaled_alpha(defaults, lora_rank)
    targets = [ALL_LINEAR]
    if adapter is not None:
        lora_rank, lora_alpha, targets = adapter
    n_epochs = _n_epochs(hp, n_train_examples)
    batch_size = min(_batch_size(hp, defaults, n_train_examples), n_train_examples)
    multiplier = _multiplier(hp)
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
        keep_last_n_checkpoints=KEEP_CHECKPOINTS,
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


# --- the "auto" rules ------------------------------------------------------------------------------


def _n_epochs(hp: SupervisedHyperparameters, n_train_examples: int) -> int:
    """OpenAI's epoch rule (openft.data.epochs, which the data check reports too) unless given."""
    if hp.n_epochs != "auto":
        return hp.n_epochs
    if n_train_examples < 1:
        raise ConfigError("the training file has no examples", "training_file")
    return auto_epochs(n_train_examples)


def _batch_size(hp: SupervisedHyperparameters, defaults: TrainingDefaults, n_train_examples: int) -> int:
    """The model's default, never more than the whole file, unless given."""
    return min(defaults.batch_size, n_train_examples) if hp.batch_size == "auto" else hp.batch_size


def _beta(hp: PreferenceHyperparameters) -> float:
    return DEFAULT_BETA if hp.beta == "auto" else float(hp.beta)


def _sft_weight(hp: PreferenceHyperparameters) -> float:
    return DEFAULT_SFT_WEIGHT if hp.sft_weight is None else float(hp.sft_weight)


def _multiplier(hp: SupervisedHyperparameters) -> float:
    return 1.0 if hp.learning_rate_multiplier == "auto" else float(hp.learning_rate_multiplier)


def _resolve_method(hp: SupervisedHyperparameters, defaults: TrainingDefaults, *, continuing: bool) -> Method:
    if isinstance(hp, ReinforcementHyperparameters):
        return "lora"  # its KL reference is the model with the adapter disabled
    if continuing:
        if hp.full_finetune:
            raise ConfigError(
                "continuing from a LoRA adapter trains that adapter; full_finetune must not be set",
                "full_finetune",
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
            f"max_seq_length {requested} is longer than the model's context of {context_length} tokens",
            "max_seq_length",
        )
    return requested


# --- checks of requested values ---------------------------------------------------------------------


def _check_auto_or_int(name: str, value: object, low: int, high: int) -> None:
    if value != "auto":
        _check_int(name, value, low, high, nullable=False)


def _check_int(name: str, value: object, low: int, high: int, *, nullable: bool) -> None:
    """Booleans are not integers here, and 2.0 is not one either: JSON says what the user meant."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        accepted = "null" if nullable else '"auto"'
        raise HyperparameterError(
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
        raise HyperparameterError(
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
