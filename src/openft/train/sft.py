"""Supervised fine-tuning: the recipe, top to bottom.

    load the tokenizer and the examples (rendered by openft.data.render, as inference renders them)
    build the model: the base, plus a new / continued / resumed LoRA adapter, or the whole model
    for each step: train on its batch, report train metrics, now and then a validation batch,
                   at each epoch end the full validation set and a checkpoint,
                   between steps obey cancel / pause
    publish the last epoch's checkpoint as final/

One step = one batch of `batch_size` examples (OpenAI's step). A step's examples are dealt to the
processes (torchrun) and packed without padding into micro-batches; the loss is the mean over the
step's trained tokens however it was split, so results do not depend on the layout.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from openft.train.adapters import build_trainable_model, load_tokenizer
from openft.train.checkpoints import (
    CheckpointKind,
    TrainerState,
    load_trainer_state,
    prune_checkpoints,
    publish_final,
    save_checkpoint,
)
from openft.train.config import SFTConfig
from openft.train.distributed import DistContext, close_distributed, init_distributed
from openft.train.examples import TokenizedExample, load_examples, truncation_warning
from openft.train.fused_lora import fused_lora_forward
from openft.train.loss import LossTotals, TokenLoss, evaluate
from openft.train.optim import make_optimizer, make_scheduler
from openft.train.packing import group_for_packing, pack, packed_attention_enabled, supports_packing
from openft.train.plan import Plan, rotating_slice, split_across_ranks
from openft.train.precision import Autocast, Precision, autocast_for, resolve_precision, row_multiple_for
from openft.train.reporting import (
    FULL_VALID_ACCURACY,
    FULL_VALID_LOSS,
    TRAIN_ACCURACY,
    TRAIN_LOSS,
    VALID_ACCURACY,
    VALID_LOSS,
    DoneStatus,
    ProgressListener,
    Reporter,
    SilentReporter,
)
from openft.train.results import ResultsCsv


@dataclass
class TrainResult:
    status: DoneStatus
    trained_tokens: int
    final_path: str | None  # final/ when succeeded, the pause checkpoint when paused, None when cancelled


@dataclass
class Run:
    """What the loop works with, built once by `_prepare`."""

    config: SFTConfig
    dist: DistContext
    reporter: Reporter
    tokenizer: Any
    train: list[TokenizedExample]
    train_lengths: list[int]  # tokens per training example, for dealing steps to processes
    valid: list[TokenizedExample]
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


def train_sft(config: SFTConfig, reporter: Reporter, *, resume_from: Path | None = None) -> TrainResult:
    """Run (or resume) one supervised fine-tuning job. Under torchrun, only rank 0 reports and writes."""
    dist = init_distributed()
    run: Run | None = None
    try:
        run = _prepare(config, reporter if dist.is_main else SilentReporter(), dist, resume_from)
        return _train(run)
    finally:
        # The DDP-wrapped model goes before its process group: destroyed in the other order, its
        # teardown can wait forever on a rank that has already exited. (A full collection takes a
        # noticeable part of a second, so a single process, with no group to wait on, skips it.)
        del run
        if dist.is_distributed:
            gc.collect()
        close_distributed()


def _train(run: Run) -> TrainResult:
    plan, state = run.plan, run.state
    packing = packed_attention_enabled(run.model) if run.loss_module.packed else nullcontext()
    fused = fused_lora_forward(run.model, enabled=run.dist.device.type == "cpu")
    run.trainer.train()
    with packing, fused:
        for step in range(state.step + 1, plan.total_steps + 1):
            indices = plan.examples_of(step)
            totals = _train_step(run, indices)
            state.step = step
            state.trained_tokens += sum(run.train_lengths[i] for i in indices)
            metrics = _report_step(run, totals)
            if plan.is_epoch_end(step):
                _save(run, plan.epoch_of(step), "epoch", metrics)
            stopped = _obey_control(run, metrics) if step < plan.total_steps else None
            if stopped is not None:
                return stopped
    return _finish(run)


def _report_step(run: Run, totals: LossTotals) -> dict[str, float]:
    """The step's metrics (validation where due), to the reporter and results.csv."""
    step = run.state.step
    if not totals.n_loss_tokens:
        run.reporter.message(f"Step {step} has no trained tokens (all weight 0 or truncated away)", "warn")
    metrics = {TRAIN_LOSS: totals.mean_loss, TRAIN_ACCURACY: totals.accuracy}
    metrics |= _validation_metrics(run, step)
    run.reporter.metrics(step, run.plan.total_steps, metrics)
    if isinstance(run.reporter, ProgressListener):
        run.reporter.progress(step, run.plan.total_steps, run.plan.epoch_of(step), run.state.trained_tokens)
    if run.results is not None:
        run.results.append(step, metrics)
    return metrics


def _obey_control(run: Run, metrics: dict[str, float]) -> TrainResult | None:
    """Between steps: rank 0's reporter says whether to go on; every process follows."""
    decision = run.dist.broadcast_word(run.reporter.control(), ("continue", "cancel", "pause"))
    if decision == "cancel":
        run.reporter.message(f"Training cancelled after step {run.state.step}")
        return TrainResult("cancelled", run.state.trained_tokens, None)
    if decision == "pause":
        return _pause(run, metrics)
    return None


def _train_step(run: Run, indices: Sequence[int]) -> LossTotals:
    """One optimizer step over the examples `indices`; returns the step's loss sums over all processes."""
    step_examples = [run.train[i] for i in indices]
    n_loss_tokens = sum(example.n_loss_tokens for example in step_examples)
    local = LossTotals()
    if n_loss_tokens:
        share = split_across_ranks(indices, run.train_lengths, run.dist.world_size)[run.dist.rank]
        groups = group_for_packing(
            [run.train[i] for i in share],
            run.config.max_tokens_per_micro_batch,
            packed=run.loss_module.packed,
        )
        # A process with no example this step still takes part in the gradient exchange, with nothing.
        groups = groups or [[_empty_example(run.tokenizer)]]
        # Sums divided by the step's trained-token count (times world size: DDP averages over processes).
        scale = run.dist.world_size / n_loss_tokens
        for i, group in enumerate(groups):
            batch = pack(group, pad_to_multiple=run.row_multiple).to(run.dist.device)
            with _sync_gradients_if(run.trainer, i == len(groups) - 1):
                with run.autocast():
                    loss_sum, n_correct = run.trainer(batch)
                (loss_sum * scale).backward()
            local.add(loss_sum.item(), n_correct.item(), batch.n_targets)
        params = [p for p in run.model.parameters() if p.requires_grad]
        torch.nn.utils.clip_grad_norm_(params, run.config.max_grad_norm)
        run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return LossTotals(*run.dist.all_sum(local.as_list()))


def _validation_metrics(run: Run, step: int) -> dict[str, float]:
    """A rotating validation batch every `eval_every_n_steps` and at epoch ends; all of it at epoch ends."""
    if not run.valid:
        return {}
    metrics: dict[str, float] = {}
    epoch_end = run.plan.is_epoch_end(step)
    if epoch_end or step % run.config.eval_every_n_steps == 0:
        round_index = step // run.config.eval_every_n_steps
        window = rotating_slice(len(run.valid), run.config.n_valid_batch_examples, round_index)
        totals = _evaluate_shared(run, [run.valid[i] for i in window])
        metrics |= {VALID_LOSS: totals.mean_loss, VALID_ACCURACY: totals.accuracy}
    if epoch_end:
        totals = _evaluate_shared(run, run.valid)
        metrics |= {FULL_VALID_LOSS: totals.mean_loss, FULL_VALID_ACCURACY: totals.accuracy}
    return metrics


def _evaluate_shared(run: Run, examples: Sequence[TokenizedExample]) -> LossTotals:
    """Each process evaluates every world_size-th example; the sums are combined."""
    mine = list(examples)[run.dist.rank :: run.dist.world_size]
    local = evaluate(
        run.loss_module,
        mine,
        max_tokens=run.config.max_tokens_per_micro_batch,
        device=run.dist.device,
        autocast=run.autocast,
        pad_to_multiple=run.row_multiple,
    )
    return LossTotals(*run.dist.all_sum(local.as_list()))


def _save(run: Run, epoch: int, kind: CheckpointKind, metrics: dict[str, float]) -> Path:
    """Rank 0 writes the checkpoint (the others wait), then reports it and prunes old ones."""
    path = Path(run.config.output_dir) / "checkpoints" / f"step-{run.state.step}"
    record = {"step": run.state.step, **metrics}
    if run.dist.is_main:
        path = save_checkpoint(
            model=run.model,
            tokenizer=run.tokenizer,
            config=run.config,
            state=run.state,
            optimizer=run.optimizer,
            scheduler=run.scheduler,
            epoch=epoch,
            kind=kind,
            metrics=record,
        )
        if kind == "epoch":
            run.reporter.checkpoint(run.state.step, epoch, str(path), record)
        prune_checkpoints(Path(run.config.output_dir), run.config.keep_last_n_checkpoints)
    run.dist.barrier()
    return path


def _pause(run: Run, metrics: dict[str, float]) -> TrainResult:
    step = run.state.step
    if run.plan.is_epoch_end(step):  # the epoch checkpoint of this very step is the pause point
        path = Path(run.config.output_dir) / "checkpoints" / f"step-{step}"
    else:
        path = _save(run, run.plan.epoch_of(step), "pause", metrics)
    run.reporter.message(f"Training paused after step {step}; resume from {path}")
    return TrainResult("paused", run.state.trained_tokens, str(path))


def _finish(run: Run) -> TrainResult:
    output_dir = Path(run.config.output_dir)
    last = output_dir / "checkpoints" / f"step-{run.plan.total_steps}"
    final = output_dir / "final"
    if run.dist.is_main:
        final = publish_final(last, output_dir)
        run.reporter.message(
            f"Training finished: {run.state.trained_tokens} tokens trained, model in {final}"
        )
    run.dist.barrier()
    return TrainResult("succeeded", run.state.trained_tokens, str(final))


def _prepare(config: SFTConfig, reporter: Reporter, dist: DistContext, resume_from: Path | None) -> Run:
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    tokenizer = load_tokenizer(config.base_model_path)
    started = time.perf_counter()
    train = load_examples(Path(config.training_file), tokenizer, config.max_seq_length)
    valid = (
        load_examples(Path(config.validation_file), tokenizer, config.max_seq_length)
        if config.validation_file
        else []
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
        results = ResultsCsv(Path(config.output_dir) / "results.csv", keep_through_step=keep)
    precision = resolve_precision(config.precision, dist.device)
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
        row_multiple=row_multiple_for(dist.device, precision),
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
    train: list[TokenizedExample],
    valid: list[TokenizedExample],
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


def _sync_gradients_if(trainer: torch.nn.Module, last: bool) -> AbstractContextManager[Any]:
    # DDP exchanges gradients on every backward unless told not to: only the step's last micro-batch syncs.
    if isinstance(trainer, DistributedDataParallel) and not last:
        return trainer.no_sync()
    return nullcontext()


def _empty_example(tokenizer: Any) -> TokenizedExample:
    token = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return TokenizedExample(input_ids=[token, token], loss_mask=[0, 0])
