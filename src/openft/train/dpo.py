"""Preference fine-tuning (DPO): the recipe, top to bottom.

    prepare (openft.train.run_setup, with preference pairs from openft.train.preference): tokenizer,
        pairs, the model (a new, continued or resumed LoRA adapter, or the whole model), optimizer,
        schedule, precision
    the reference: every pair's log-probabilities under the model as it starts, computed once before
        the first step and saved in the run's directory (a resumed run reads them back). For a new LoRA
        adapter that is the base model (the adapter starts as a no-op), for a continued one the
        supervised model it continues: no second copy of the model is ever held
    for each step: the policy's log-probabilities of the step's pairs (both outputs of every pair in
                   one packed row), the sigmoid DPO loss plus the weighted supervised loss of the
                   preferred outputs, one update; the reward metrics, now and then
                   a validation window, at epoch ends the whole validation set and a checkpoint,
                   between steps cancel / pause (openft.train.loop, shared with supervised training)
    publish the last epoch's checkpoint as final/

One step = `batch_size` pairs. The loss is the mean over the step's pairs however they were split
into micro-batches. DPO runs in one process (no torchrun).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from openft.train.config import SFTConfig
from openft.train.distributed import close_distributed, init_distributed
from openft.train.loop import (
    TrainResult,
    conversation_log_probs,
    finish,
    model_context,
    obey_control,
    save,
    stop_if_diverged,
    validation_due,
)
from openft.train.optim import clip_gradients
from openft.train.packing import group_by_tokens, pack_pairs
from openft.train.preference import (
    PreferenceTotals,
    TokenizedPair,
    dpo_loss,
    flatten,
    load_pairs,
    preferred_token_counts,
    sequence_log_probs,
)
from openft.train.reporting import (
    FULL_VALID_LOSS,
    PREFERENCE_METRICS,
    TRAIN_LOSS,
    VALID_LOSS,
    Reporter,
    SilentReporter,
)
from openft.train.run import run_recipe
from openft.train.run_setup import Run, prepare_run
from openft.train.spec import ConfigError

PreferenceRun = Run[TokenizedPair]
# In the run's directory: the reference's log-probabilities, written before the first step.
REFERENCE_FILE = "reference_log_probs.pt"


@dataclass
class Reference:
    """log pi_ref of each pair's (preferred, non-preferred) output: shape (pairs, 2)."""

    train: torch.Tensor
    valid: torch.Tensor


def train_dpo(config: SFTConfig, reporter: Reporter, *, resume_from: Path | None = None) -> TrainResult:
    """Run (or resume) one DPO job."""
    dist = init_distributed()
    run: PreferenceRun | None = None
    try:
        if dist.is_distributed:
            raise ConfigError("DPO runs in one process: set OPENFT_TRAIN_PROCESSES=1 for preference jobs")
        run = prepare_run(
            config, reporter if dist.is_main else SilentReporter(), dist, resume_from, load_pairs
        )
        with model_context(run):
            reference = _reference(run, resumed=resume_from is not None)
            return _train(run, reference)
    finally:
        del run
        gc.collect()
        close_distributed()


def _train(run: PreferenceRun, reference: Reference) -> TrainResult:
    plan, state = run.plan, run.state
    run.model.train()
    for step in range(state.step + 1, plan.total_steps + 1):
        indices = plan.examples_of(step)
        totals = _train_step(run, step, indices, reference)
        state.step = step
        state.trained_tokens += sum(run.train_lengths[i] for i in indices)
        metrics = _report_step(run, totals, reference)
        if plan.is_epoch_end(step):
            save(run, plan.epoch_of(step), "epoch", metrics)
        stopped = obey_control(run, metrics) if step < plan.total_steps else None
        if stopped is not None:
            return stopped
    return finish(run)


def _train_step(
    run: PreferenceRun, step: int, indices: Sequence[int], reference: Reference
) -> PreferenceTotals:
    """One optimizer step over the pairs `indices`. A non-finite loss or gradient norm stops the run."""
    totals = PreferenceTotals()
    scale = 1.0 / len(indices)
    beta = _beta(run)
    for group in _micro_batches(indices, run.train_lengths, run.config.max_tokens_per_micro_batch):
        pairs = [run.train[i] for i in group]
        with run.autocast():
            policy = _log_probs(run, pairs)
        loss = dpo_loss(policy, reference.train[group].flatten(), beta, preferred_token_counts(pairs))
        (loss.objective(run.config.sft_weight) * scale).backward()
        totals.add(loss)
    grad_norm = clip_gradients(run.optimizer, run.model, run.config.max_grad_norm)
    stop_if_diverged(
        run,
        step,
        {"training loss": totals.mean_loss, "supervised loss": totals.sft_loss, "gradient norm": grad_norm},
    )
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return totals


def _report_step(run: PreferenceRun, totals: PreferenceTotals, reference: Reference) -> dict[str, float]:
    step = run.state.step
    metrics = {TRAIN_LOSS: totals.mean_loss, **_named("train", totals)}
    metrics |= _validation_metrics(run, step, reference)
    stop_if_diverged(run, step, {"training loss": totals.mean_loss})
    progress = getattr(run.reporter, "progress", None)
    if progress is not None:  # first, so the metrics' event can say tokens/s
        progress(step, run.plan.total_steps, run.plan.epoch_of(step), run.state.trained_tokens)
    run.reporter.metrics(step, run.plan.total_steps, metrics)
    if run.results is not None:
        run.results.append(step, metrics)
    return metrics


def _validation_metrics(run: PreferenceRun, step: int, reference: Reference) -> dict[str, float]:
    """Loss and rewards on the validation window due (openft.train.loop), and on all of it at epoch ends."""
    window, whole = validation_due(run, step)
    metrics: dict[str, float] = {}
    if window is not None:
        totals = _evaluate(run, window, reference.valid)
        metrics |= {VALID_LOSS: totals.mean_loss, **_named("valid", totals)}
    if whole:
        totals = _evaluate(run, list(range(len(run.valid))), reference.valid)
        metrics |= {FULL_VALID_LOSS: totals.mean_loss, **_named("full_valid", totals)}
    return metrics


@torch.no_grad()
def _evaluate(run: PreferenceRun, indices: list[int], reference: torch.Tensor) -> PreferenceTotals:
    totals = PreferenceTotals()
    run.model.eval()
    try:
        lengths = [pair.n_tokens for pair in run.valid]
        for group in _micro_batches(indices, lengths, run.config.max_tokens_per_micro_batch):
            pairs = [run.valid[i] for i in group]
            with run.autocast():
                policy = _log_probs(run, pairs)
            totals.add(
                dpo_loss(policy, reference[group].flatten(), _beta(run), preferred_token_counts(pairs))
            )
    finally:
        run.model.train()
    return totals


def _named(prefix: str, totals: PreferenceTotals) -> dict[str, float]:
    values = (
        totals.reward_accuracy,
        totals.reward_margin,
        totals.preferred_reward,
        totals.non_preferred_reward,
        totals.sft_loss,
    )
    return {f"{prefix}_{name}": value for name, value in zip(PREFERENCE_METRICS, values, strict=True)}


# --- the reference ---------------------------------------------------------------------------------


def _reference(run: PreferenceRun, *, resumed: bool) -> Reference:
    """The reference log-probabilities: read back when resuming, else computed now and saved first."""
    path = run.config.layout.output_dir / REFERENCE_FILE
    if path.is_file():
        saved = torch.load(path, map_location=run.dist.device)
        if saved["train"].shape[0] == len(run.train) and saved["valid"].shape[0] == len(run.valid):
            return Reference(saved["train"], saved["valid"])
    if resumed:
        raise ConfigError(
            f"cannot resume: the run's reference log-probabilities ({REFERENCE_FILE}) are missing or were "
            "computed for other files"
        )
    run.reporter.message(
        f"Scoring {len(run.train) + len(run.valid)} preference pairs with the reference model"
    )
    reference = Reference(_all_log_probs(run, run.train), _all_log_probs(run, run.valid))
    partial = path.with_name(f".{REFERENCE_FILE}.{os.getpid()}")
    torch.save({"train": reference.train.cpu(), "valid": reference.valid.cpu()}, partial)
    os.replace(partial, path)
    return reference


@torch.no_grad()
def _all_log_probs(run: PreferenceRun, pairs: list[TokenizedPair]) -> torch.Tensor:
    rows = torch.zeros(len(pairs), 2, device=run.dist.device)
    run.model.eval()
    try:
        lengths = [pair.n_tokens for pair in pairs]
        for group in _micro_batches(range(len(pairs)), lengths, run.config.max_tokens_per_micro_batch):
            with run.autocast():
                rows[group] = _log_probs(run, [pairs[i] for i in group]).float().view(-1, 2)
    finally:
        run.model.train()
    return rows


# --- shared by the policy and the reference ---------------------------------------------------------


def _log_probs(run: PreferenceRun, pairs: list[TokenizedPair]) -> torch.Tensor:
    """Each pair's outputs' log-probabilities, in packing order (preferred, non-preferred, ...). Packed,
    a pair's prompt runs through the model once for both outputs (openft.train.packing.pack_pairs)."""
    if not run.loss_module.packed:
        return conversation_log_probs(run, flatten(pairs))
    batch = pack_pairs([p.conversations() for p in pairs], pad_to_multiple=run.row_multiple)
    return sequence_log_probs(run.model, batch.to(run.dist.device), 2 * len(pairs), packed=True)


def _micro_batches(indices: Sequence[int], lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Consecutive pairs up to `max_tokens` per micro-batch (a longer pair alone)."""
    return group_by_tokens(list(indices), [lengths[i] for i in indices], max_tokens)


def _beta(run: PreferenceRun) -> float:
    assert run.config.beta is not None  # SFTConfig checks it for DPO
    return run.config.beta


def recipe_main(config: SFTConfig, resume_from: Path | None = None) -> int:
    """The DPO recipe as a job's process (openft.train.run.run_recipe): returns the exit status."""
    return run_recipe(train_dpo, config, resume_from)
