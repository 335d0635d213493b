"""Everything a supervised fine-tuning run works with, built once before its first step.

The tokenizer and the examples (rendered by openft.data.render, as inference renders them), the step
plan, the model (the base plus a new, continued or resumed LoRA adapter, or the whole model), the
optimizer and schedule (restored when resuming), the precision, and the run's first message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from torch.nn.parallel import DistributedDataParallel

from openft.train.adapters import build_trainable_model, load_tokenizer
from openft.train.checkpoints import TrainerState, load_trainer_state
from openft.train.config import SFTConfig
from openft.train.core_share import CoreShare
from openft.train.distributed import DistContext
from openft.train.environment import preloaded_allocator
from openft.train.examples import Example, load_examples, truncation_warning
from openft.train.frozen_weights import store_frozen_linear_weights
from openft.train.loss import TokenLoss
from openft.train.optim import make_optimizer, make_scheduler
from openft.train.packing import supports_packing
from openft.train.plan import Plan
from openft.train.precision import Autocast, Precision, autocast_for, resolve_precision, row_multiple_for
from openft.train.reporting import PREFERENCE_METRICS, Reporter
from openft.train.results import ResultsCsv

E = TypeVar("E", bound=Example)
# DPO's extra columns in results.csv: the training and validation reward metrics.
PREFERENCE_COLUMNS = tuple(f"{split}_{name}" for split in ("train", "valid") for name in PREFERENCE_METRICS)
# Each method's columns in results.csv after OpenAI's five.
EXTRA_COLUMNS = {
    "dpo": PREFERENCE_COLUMNS,
    "reinforcement": ("train_reward_mean", "train_kl", "train_answer_tokens", "valid_reward_mean"),
}
# A recipe's examples from a file: (path, tokenizer, max_seq_length) -> examples in file order.
Loader = Callable[[Path, Any, int], list[E]]


@dataclass
class Run(Generic[E]):
    """What the loop works with, built once by `prepare_run`; E is what one training example is (a
    conversation for supervised training, a preference pair for DPO)."""

    config: SFTConfig
    dist: DistContext
    reporter: Reporter
    tokenizer: Any
    train: list[E]
    train_lengths: list[int]  # tokens per training example, for dealing steps to processes
    valid: list[E]
    plan: Plan
    model: Any
    loss_module: TokenLoss
    trainer: torch.nn.Module  # loss_module, or DDP around it
    optimizer: torch.optim.Optimizer
    scheduler: Any
    state: TrainerState
    results: ResultsCsv | None
    precision: Precision  # "auto" resolved for this device
    autocast: Autocast
    row_multiple: int  # packed rows padded to a multiple of this (openft.train.precision)
    cores: CoreShare | None = None  # a lone CPU process's threads, rebalanced between steps


def prepare_run(
    config: SFTConfig,
    reporter: Reporter,
    dist: DistContext,
    resume_from: Path | None,
    load: Loader[E] = load_examples,  # type: ignore[assignment]  # the supervised recipe's examples
) -> Run[E]:
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    tokenizer = load_tokenizer(config.base_model_path)
    started = time.perf_counter()
    train = load(Path(config.training_file), tokenizer, config.max_seq_length)
    valid = (
        load(Path(config.validation_file), tokenizer, config.max_seq_length) if config.validation_file else []
    )
    plan = Plan(len(train), config.batch_size, config.n_epochs, config.seed)
    model = build_trainable_model(config, dist.device, resume_from)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, plan.total_steps)
    state = TrainerState(n_train_examples=len(train))
    if resume_from is not None:
        state = _resume_state(resume_from, optimizer, scheduler, len(train))
    loss_module = TokenLoss(model, packed=supports_packing(model))
    trainer: torch.nn.Module = loss_module
    if dist.is_distributed:
        device_ids = [dist.device.index] if dist.device.type == "cuda" else None
        trainer = DistributedDataParallel(loss_module, device_ids=device_ids)
    results = None
    if dist.is_main:
        keep = state.step if resume_from is not None else 0
        extra = EXTRA_COLUMNS.get(config.training_method, ())
        results = ResultsCsv(config.layout.results_file, keep_through_step=keep, extra_columns=extra)
    precision = resolve_precision(config.precision, dist.device, packed=loss_module.packed)
    if config.method == "lora" and precision == "bf16" and dist.device.type == "cpu":
        store_frozen_linear_weights(model, torch.bfloat16)  # no casts of them at every step
    _report_start(reporter, config, train, valid, plan, state, time.perf_counter() - started, dist, precision)
    return Run(
        config=config,
        dist=dist,
        reporter=reporter,
        tokenizer=tokenizer,
        train=train,
        train_lengths=[example.n_tokens for example in train],
        valid=valid,
        plan=plan,
        model=model,
        loss_module=loss_module,
        trainer=trainer,
        optimizer=optimizer,
        scheduler=scheduler,
        state=state,
        results=results,
        precision=precision,
        autocast=autocast_for(dist.device, precision),
        row_multiple=row_multiple_for(dist.device, precision, packed=loss_module.packed),
        cores=CoreShare.for_this_process(dist.device, dist.local_world_size),
    )


def _resume_state(checkpoint: Path, optimizer: Any, scheduler: Any, n_train_examples: int) -> TrainerState:
    state = load_trainer_state(checkpoint, optimizer, scheduler)
    if state.n_train_examples != n_train_examples:
        raise ValueError(
            f"cannot resume from {checkpoint}: it was trained on {state.n_train_examples} examples, "
            f"but the training file now has {n_train_examples}"
        )
    return state


def _report_start(
    reporter: Reporter,
    config: SFTConfig,
    train: list[E],
    valid: list[E],
    plan: Plan,
    state: TrainerState,
    load_s: float,
    dist: DistContext,
    precision: Precision,
) -> None:
    n_tokens = sum(example.n_tokens for example in train)
    n_trained = sum(example.n_loss_tokens for example in train)
    where = f"{dist.world_size} processes" if dist.is_distributed else str(dist.device)
    where += ", bf16 mixed precision" if precision == "bf16" else ", fp32"
    allocator = preloaded_allocator()
    where += f", {allocator} allocator" if allocator else ""
    validation = f", {_count(len(valid), 'validation example')}" if valid else ""
    reporter.message(
        f"Training {config.base_model_name} ({config.method}) on {_count(len(train), 'example')} "
        f"({n_tokens} tokens, {n_trained} of them trained{validation}) for "
        f"{_count(config.n_epochs, 'epoch')}: "
        f"{_count(plan.total_steps, 'step')} of {_count(config.batch_size, 'example')} on {where} "
        f"(data prepared in {load_s:.1f} s)"
    )
    for examples, label in ((train, "training"), (valid, "validation")):
        warning = truncation_warning(examples, label, config.max_seq_length)
        if warning:
            reporter.message(warning, "warn")
    if state.step:
        reporter.message(f"Resumed at step {state.step} of {plan.total_steps}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
