"""What every recipe's loop does between its steps, whatever the method trains on.

Checking for a cancel or pause word, stopping on a non-finite loss, gradient norm or weight
(openft.train.divergence), writing epoch and pause checkpoints (only rank 0 writes), publishing the
final model, and syncing gradients only on a step's last micro-batch under DDP. The supervised recipe
(openft.train.sft) and the preference recipe (openft.train.dpo) both call these; each keeps its own
steps, loss and metrics.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from openft.train.checkpoints import CheckpointKind, prune_checkpoints, publish_final, save_checkpoint
from openft.train.divergence import TrainingDiverged, first_non_finite
from openft.train.examples import TokenizedExample
from openft.train.fused_lora import fused_lora_forward
from openft.train.lean_layers import lean_layers
from openft.train.packing import pack, packed_attention_enabled
from openft.train.plan import rotating_slice
from openft.train.preference import sequence_log_probs
from openft.train.reporting import DoneStatus
from openft.train.run_setup import Run


@dataclass
class TrainResult:
    status: DoneStatus
    trained_tokens: int
    final_path: str | None  # final/ when succeeded, the pause checkpoint when paused, None when cancelled


def model_context(run: Run[Any]) -> ExitStack:
    """For the whole run: packed attention where the model can pack, the fused LoRA forward on a CPU,
    the memory-lean norms, MLPs and linear layers of a fully trained model, and the process's CPU
    threads given back at the end."""
    stack = ExitStack()
    if run.loss_module.packed:
        stack.enter_context(packed_attention_enabled(run.model))
    stack.enter_context(fused_lora_forward(run.model, enabled=run.dist.device.type == "cpu"))
    stack.enter_context(lean_layers(run.model))
    if run.cores is not None:
        stack.callback(run.cores.restore)  # the threads rebalanced between steps (obey_control)
    return stack


def conversation_log_probs(run: Run[Any], conversations: list[TokenizedExample]) -> torch.Tensor:
    """Summed log-probabilities of each conversation's trained tokens: one packed row, or one
    conversation per forward pass for a model that cannot pack."""
    if run.loss_module.packed:
        batch = pack(conversations, pad_to_multiple=run.row_multiple).to(run.dist.device)
        return sequence_log_probs(run.model, batch, len(conversations), packed=True)
    return torch.cat(
        [sequence_log_probs(run.model, pack([c]).to(run.dist.device), 1, packed=False) for c in conversations]
    )


def validation_due(run: Run[Any], step: int) -> tuple[list[int] | None, bool]:
    """What to validate after `step`: the rotating window of validation examples due every
    `eval_every_n_steps` and at epoch ends (None: none due), and whether the whole validation set is due
    (at epoch ends)."""
    if not run.valid:
        return None, False
    epoch_end = run.plan.is_epoch_end(step)
    if not (epoch_end or step % run.config.eval_every_n_steps == 0):
        return None, False
    round_index = step // run.config.eval_every_n_steps
    window = rotating_slice(len(run.valid), run.config.n_valid_batch_examples, round_index)
    return list(window), epoch_end


def obey_control(run: Run[Any], metrics: dict[str, float]) -> TrainResult | None:
    """Between steps: the CPU threads follow the cores other processes leave free
    (openft.train.core_share); rank 0's reporter says whether to go on; every process follows."""
    if run.cores is not None:
        run.cores.rebalance()
    decision = run.dist.broadcast_word(run.reporter.control(), ("continue", "cancel", "pause"))
    if decision == "cancel":
        run.reporter.message(f"Training cancelled after step {run.state.step}")
        return TrainResult("cancelled", run.state.trained_tokens, None)
    if decision == "pause":
        return pause(run, metrics)
    return None


def stop_if_diverged(run: Run[Any], step: int, values: dict[str, float]) -> None:
    what = first_non_finite(values)
    if what is not None:
        raise diverged(run, step, what)


def stop_if_weights_diverged(run: Run[Any]) -> None:
    """Before a checkpoint: an update can overflow the weights on the very step whose loss was still
    fine, and a checkpoint of such weights must never be published."""
    trained = [p.detach() for p in run.model.parameters() if p.requires_grad]
    if trained and not bool(torch.stack([torch.isfinite(p).all() for p in trained]).all()):
        raise diverged(run, run.state.step, "a trained weight")


def diverged(run: Run[Any], step: int, what: str) -> TrainingDiverged:
    return TrainingDiverged(
        step,
        what,
        learning_rate_multiplier=run.config.learning_rate_multiplier,
        learning_rate=run.config.learning_rate,
    )


def save(run: Run[Any], epoch: int, kind: CheckpointKind, metrics: dict[str, float]) -> Path:
    """Rank 0 writes the checkpoint (the others wait), then reports it and prunes old ones."""
    stop_if_weights_diverged(run)
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


def pause(run: Run[Any], metrics: dict[str, float]) -> TrainResult:
    step = run.state.step
    if run.plan.is_epoch_end(step):  # the epoch checkpoint of this very step is the pause point
        path = run.config.layout.checkpoint_dir(step)
    else:
        path = save(run, run.plan.epoch_of(step), "pause", metrics)
    # Relative to the run's directory: the words reach API clients, who do not see the server's disk.
    where = path.relative_to(run.config.output_dir) if path.is_relative_to(run.config.output_dir) else path
    run.reporter.message(f"Training paused after step {step}; resume from {where}")
    return TrainResult("paused", run.state.trained_tokens, str(path))


def finish(run: Run[Any]) -> TrainResult:
    layout = run.config.layout
    final = layout.final_dir
    if run.dist.is_main:
        final = publish_final(layout.checkpoint_dir(run.plan.total_steps), layout.output_dir)
        run.reporter.message(
            f"Training finished: {run.state.trained_tokens} tokens trained, model in {final.name}/"
        )
    run.dist.barrier()
    return TrainResult("succeeded", run.state.trained_tokens, str(final))


def sync_gradients_if(trainer: torch.nn.Module, last: bool) -> AbstractContextManager[Any]:
    # DDP exchanges gradients on every backward unless told not to: only the step's last micro-batch syncs.
    if isinstance(trainer, DistributedDataParallel) and not last:
        return trainer.no_sync()
    return nullcontext()
