"""Supervised fine-tuning: the recipe, top to bottom.

    prepare (openft.train.run_setup): the tokenizer and the examples (rendered by openft.data.render,
        as inference renders them); the model: the base, plus a new / continued / resumed LoRA
        adapter, or the whole model; optimizer, schedule, precision
    for each step: train on its batch, report train metrics, now and then a validation batch,
                   at each epoch end the full validation set and a checkpoint,
                   between steps obey cancel / pause
                   (a loss, gradient norm or weight that is not a finite number stops the run:
                   openft.train.divergence)
    publish the last epoch's checkpoint as final/
    as a job's process (`recipe_main`, at the bottom): JSON-lines reports, the control file, exit status

One step = one batch of `batch_size` examples (OpenAI's step). A step's examples are dealt to the
processes (torchrun) and packed without padding into micro-batches (bf16 on a CPU pads each row to a
fixed multiple, openft.train.precision); the loss is the mean over the
step's trained tokens however it was split, so results do not depend on the layout.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openft.train.config import SFTConfig
from openft.train.distributed import close_distributed, init_distributed
from openft.train.examples import TokenizedExample
from openft.train.loop import (
    TrainResult,
    finish,
    model_context,
    obey_control,
    save,
    stop_if_diverged,
    sync_gradients_if,
    validation_due,
)
from openft.train.loss import LossTotals, evaluate
from openft.train.optim import clip_gradients
from openft.train.packing import group_for_packing, pack
from openft.train.plan import split_across_ranks
from openft.train.reporting import (
    FULL_VALID_ACCURACY,
    FULL_VALID_LOSS,
    TRAIN_ACCURACY,
    TRAIN_LOSS,
    VALID_ACCURACY,
    VALID_LOSS,
    ProgressListener,
    Reporter,
    SilentReporter,
)
from openft.train.run import run_recipe
from openft.train.run_setup import Run, prepare_run

SupervisedRun = Run[TokenizedExample]


def train_sft(config: SFTConfig, reporter: Reporter, *, resume_from: Path | None = None) -> TrainResult:
    """Run (or resume) one supervised fine-tuning job. Under torchrun, only rank 0 reports and writes."""
    dist = init_distributed()
    run: SupervisedRun | None = None
    try:
        run = prepare_run(config, reporter if dist.is_main else SilentReporter(), dist, resume_from)
        return _train(run)
    finally:
        # The DDP-wrapped model goes before its process group: destroyed in the other order, its
        # teardown can wait forever on a rank that has already exited. (A full collection takes a
        # noticeable part of a second, so a single process, with no group to wait on, skips it.)
        del run
        if dist.is_distributed:
            gc.collect()
        close_distributed()


def _train(run: SupervisedRun) -> TrainResult:
    plan, state = run.plan, run.state
    run.trainer.train()
    with model_context(run):
        for step in range(state.step + 1, plan.total_steps + 1):
            indices = plan.examples_of(step)
            totals = _train_step(run, step, indices)
            state.step = step
            state.trained_tokens += sum(run.train_lengths[i] for i in indices)
            metrics = _report_step(run, totals)
            if plan.is_epoch_end(step):
                save(run, plan.epoch_of(step), "epoch", metrics)
            stopped = obey_control(run, metrics) if step < plan.total_steps else None
            if stopped is not None:
                return stopped
    return finish(run)


def _report_step(run: SupervisedRun, totals: LossTotals) -> dict[str, float]:
    """The step's metrics (validation where due), to the reporter and results.csv."""
    step = run.state.step
    if not totals.n_loss_tokens:
        run.reporter.message(f"Step {step} has no trained tokens (all weight 0 or truncated away)", "warn")
    metrics = {TRAIN_LOSS: totals.mean_loss, TRAIN_ACCURACY: totals.accuracy}
    metrics |= _validation_metrics(run, step)
    stop_if_diverged(run, step, metrics)
    if isinstance(run.reporter, ProgressListener):  # first, so the metrics' event can say tokens/s
        run.reporter.progress(step, run.plan.total_steps, run.plan.epoch_of(step), run.state.trained_tokens)
    run.reporter.metrics(step, run.plan.total_steps, metrics)
    if run.results is not None:
        run.results.append(step, metrics)
    return metrics


def _train_step(run: SupervisedRun, step: int, indices: Sequence[int]) -> LossTotals:
    """One optimizer step over the examples `indices`; returns the step's loss sums over all processes.

    A non-finite loss or gradient norm stops the run before the optimizer applies it."""
    step_examples = [run.train[i] for i in indices]
    n_loss_tokens = sum(example.n_loss_tokens for example in step_examples)
    local = LossTotals()
    grad_norm = 0.0
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
            with sync_gradients_if(run.trainer, i == len(groups) - 1):
                with run.autocast():
                    loss_sum, n_correct = run.trainer(batch)
                (loss_sum * scale).backward()
            local.add(loss_sum.item(), n_correct.item(), batch.n_targets)
        grad_norm = clip_gradients(run.optimizer, run.model, run.config.max_grad_norm)
    # Every process sees the same sums and (gradients being synced) the same norm, so all stop together.
    totals = LossTotals(*run.dist.all_sum(local.as_list()))
    stop_if_diverged(run, step, {"training loss": totals.mean_loss, "gradient norm": grad_norm})
    if n_loss_tokens:
        run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return totals


def _validation_metrics(run: SupervisedRun, step: int) -> dict[str, float]:
    """Loss and accuracy on the validation window due (openft.train.loop), and on all of it at epoch ends."""
    window, whole = validation_due(run, step)
    metrics: dict[str, float] = {}
    if window is not None:
        totals = _evaluate_shared(run, [run.valid[i] for i in window])
        metrics |= {VALID_LOSS: totals.mean_loss, VALID_ACCURACY: totals.accuracy}
    if whole:
        totals = _evaluate_shared(run, run.valid)
        metrics |= {FULL_VALID_LOSS: totals.mean_loss, FULL_VALID_ACCURACY: totals.accuracy}
    return metrics


def _evaluate_shared(run: SupervisedRun, examples: Sequence[TokenizedExample]) -> LossTotals:
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


def _empty_example(tokenizer: Any) -> TokenizedExample:
    token = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return TokenizedExample(input_ids=[token, token], loss_mask=[0, 0])


def recipe_main(config: SFTConfig, resume_from: Path | None = None) -> int:
    """The supervised recipe as a job's process (openft.train.run.run_recipe): returns the exit status."""
    return run_recipe(train_sft, config, resume_from)
