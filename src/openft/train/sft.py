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
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from openft.train.checkpoints import (
    CheckpointKind,
    prune_checkpoints,
    publish_final,
    save_checkpoint,
)
from openft.train.config import SFTConfig
from openft.train.distributed import close_distributed, init_distributed
from openft.train.divergence import TrainingDiverged, first_non_finite
from openft.train.examples import DataError, TokenizedExample
from openft.train.fused_lora import fused_lora_forward
from openft.train.loss import LossTotals, evaluate
from openft.train.packing import group_for_packing, pack, packed_attention_enabled
from openft.train.plan import rotating_slice, split_across_ranks
from openft.train.reporting import (
    FULL_VALID_ACCURACY,
    FULL_VALID_LOSS,
    TRAIN_ACCURACY,
    TRAIN_LOSS,
    VALID_ACCURACY,
    VALID_LOSS,
    DoneStatus,
    JsonLinesReporter,
    ProgressListener,
    Reporter,
    SilentReporter,
)
from openft.train.run import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    describe_failure,
    is_main_process,
    report_divergence,
    report_failure,
)
from openft.train.run_setup import Run, prepare_run
from openft.train.spec import ConfigError


@dataclass
class TrainResult:
    status: DoneStatus
    trained_tokens: int
    final_path: str | None  # final/ when succeeded, the pause checkpoint when paused, None when cancelled


def train_sft(config: SFTConfig, reporter: Reporter, *, resume_from: Path | None = None) -> TrainResult:
    """Run (or resume) one supervised fine-tuning job. Under torchrun, only rank 0 reports and writes."""
    dist = init_distributed()
    run: Run | None = None
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


def _train(run: Run) -> TrainResult:
    plan, state = run.plan, run.state
    packing = packed_attention_enabled(run.model) if run.loss_module.packed else nullcontext()
    fused = fused_lora_forward(run.model, enabled=run.dist.device.type == "cpu")
    run.trainer.train()
    with packing, fused:
        for step in range(state.step + 1, plan.total_steps + 1):
            indices = plan.examples_of(step)
            totals = _train_step(run, step, indices)
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
    _stop_if_diverged(run, step, metrics)
    if isinstance(run.reporter, ProgressListener):  # first, so the metrics' event can say tokens/s
        run.reporter.progress(step, run.plan.total_steps, run.plan.epoch_of(step), run.state.trained_tokens)
    run.reporter.metrics(step, run.plan.total_steps, metrics)
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


def _train_step(run: Run, step: int, indices: Sequence[int]) -> LossTotals:
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
            with _sync_gradients_if(run.trainer, i == len(groups) - 1):
                with run.autocast():
                    loss_sum, n_correct = run.trainer(batch)
                (loss_sum * scale).backward()
            local.add(loss_sum.item(), n_correct.item(), batch.n_targets)
        params = [p for p in run.model.parameters() if p.requires_grad]
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, run.config.max_grad_norm))
    # Every process sees the same sums and (gradients being synced) the same norm, so all stop together.
    totals = LossTotals(*run.dist.all_sum(local.as_list()))
    _stop_if_diverged(run, step, {"training loss": totals.mean_loss, "gradient norm": grad_norm})
    if n_loss_tokens:
        run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return totals


def _stop_if_diverged(run: Run, step: int, values: dict[str, float]) -> None:
    what = first_non_finite(values)
    if what is not None:
        raise _diverged(run, step, what)


def _stop_if_weights_diverged(run: Run) -> None:
    """Before a checkpoint: an update can overflow the weights on the very step whose loss was still
    fine, and a checkpoint of such weights must never be published."""
    trained = [p.detach() for p in run.model.parameters() if p.requires_grad]
    if trained and not bool(torch.stack([torch.isfinite(p).all() for p in trained]).all()):
        raise _diverged(run, run.state.step, "a trained weight")


def _diverged(run: Run, step: int, what: str) -> TrainingDiverged:
    return TrainingDiverged(
        step,
        what,
        learning_rate_multiplier=run.config.learning_rate_multiplier,
        learning_rate=run.config.learning_rate,
    )


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
    _stop_if_weights_diverged(run)
    path = run.config.layout.checkpoint_dir(run.state.step)
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
        path = run.config.layout.checkpoint_dir(step)
    else:
        path = _save(run, run.plan.epoch_of(step), "pause", metrics)
    # Relative to the run's directory: the words reach API clients, who do not see the server's disk.
    where = path.relative_to(run.config.output_dir) if path.is_relative_to(run.config.output_dir) else path
    run.reporter.message(f"Training paused after step {step}; resume from {where}")
    return TrainResult("paused", run.state.trained_tokens, str(path))


def _finish(run: Run) -> TrainResult:
    layout = run.config.layout
    final = layout.final_dir
    if run.dist.is_main:
        final = publish_final(layout.checkpoint_dir(run.plan.total_steps), layout.output_dir)
        run.reporter.message(
            f"Training finished: {run.state.trained_tokens} tokens trained, model in {final.name}/"
        )
    run.dist.barrier()
    return TrainResult("succeeded", run.state.trained_tokens, str(final))


def _sync_gradients_if(trainer: torch.nn.Module, last: bool) -> AbstractContextManager[Any]:
    # DDP exchanges gradients on every backward unless told not to: only the step's last micro-batch syncs.
    if isinstance(trainer, DistributedDataParallel) and not last:
        return trainer.no_sync()
    return nullcontext()


def _empty_example(tokenizer: Any) -> TokenizedExample:
    token = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return TokenizedExample(input_ids=[token, token], loss_mask=[0, 0])


def recipe_main(config: SFTConfig, resume_from: Path | None = None) -> int:
    """The recipe as a job's process (what the worker runs, directly or under torchrun): rank 0 reports
    JSON lines on stdout and obeys the control file; returns the exit status (openft.train.run)."""
    is_main = is_main_process()
    try:
        if resume_from is not None and not resume_from.is_dir():
            raise ConfigError(f"--resume-from {resume_from}: no such checkpoint directory")
        control = config.layout.control_file
        control.parent.mkdir(parents=True, exist_ok=True)
        if is_main:  # a word left by an earlier run (the pause that this run resumes) is not for this one
            control.unlink(missing_ok=True)
        reporter = JsonLinesReporter(sys.stdout, control)
        result = train_sft(config, reporter if is_main else SilentReporter(), resume_from=resume_from)
    except TrainingDiverged as exc:
        return report_divergence(exc, is_main)
    except (ConfigError, DataError, FileNotFoundError) as exc:
        return report_failure(EXIT_BAD_INPUT, str(exc), is_main)
    except MemoryError:
        return report_failure(EXIT_FAILED, "out of memory: lower batch_size or max_seq_length", is_main)
    except Exception as exc:
        return report_failure(EXIT_FAILED, describe_failure(exc), is_main)
    if is_main:
        reporter.done(result.status, result.trained_tokens, result.final_path)
    return 0
