"""Reinforcement fine-tuning with a grader: the recipe, top to bottom (group-relative policy gradients).

    prepare (openft.train.run_setup, with prompts): tokenizer, the prompts (each line's messages ending
        before the answer, rendered with the chat template's generation prompt; the whole line is the
        grader's `item`), a LoRA adapter on the base (new, continued or resumed), optimizer, schedule
    for each step: for each of the step's prompts, sample a group of answers from the current policy;
                   grade every answer with the job's grader (openft.graders: a python grader runs in
                   its sandbox, once for the whole step; a model grader asks its judge model through
                   an engine of the recipe's own, openft.train.judging); advantages relative to the group
                   ((reward - group mean) / group std); one update of
                       - advantage x mean log-probability of the answer's tokens
                       + kl_coef x (mean log-probability - the same under the reference)
                   where the reference is the model with the adapter disabled;
                   metrics (reward mean, answer length, KL, grader errors, each sub-grader's reward),
                   a validation reward every `eval_interval` steps; epoch checkpoints, cancel, pause
                   (openft.train.loop)
    publish the last epoch's checkpoint as final/

One step = `batch_size` prompts, each answered `group_size` times (4 x compute_multiplier). An answer a
grader could not score (its error flags) gets reward 0 and is counted, never a failed job.
Reinforcement runs LoRA in one process.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from openft.data.lines import BadLine, iter_json_lines
from openft.data.render import render_prompt, stop_token_ids
from openft.data.validate_prompt import prompt_messages
from openft.graders.model_graders import Judge
from openft.graders.outcome import Outcome
from openft.graders.run import grade_samples
from openft.inference.embeddings import shared_embedder
from openft.inference.grammar import OutputGrammar, output_grammar
from openft.inference.in_process import generate_token_ids
from openft.inference.types import GenerationRequest, ModelRef, SamplingParams
from openft.train.config import SFTConfig
from openft.train.distributed import close_distributed, init_distributed
from openft.train.examples import DataError, TokenizedExample, tools_of
from openft.train.judging import RecipeJudge
from openft.train.loop import (
    TrainResult,
    conversation_log_probs,
    finish,
    model_context,
    obey_control,
    save,
    stop_if_diverged,
)
from openft.train.optim import clip_gradients
from openft.train.packing import group_by_tokens
from openft.train.reporting import TRAIN_LOSS, Reporter, SilentReporter
from openft.train.run import run_recipe
from openft.train.run_setup import Run, prepare_run
from openft.train.spec import ConfigError

# The metrics a reinforcement run reports (events, checkpoints, results.csv), with the split's prefix.
REWARD_METRICS = ("reward_mean", "reward_std", "answer_tokens", "kl", "grader_error_rate")
_SEED_MIX = 1_000_003  # one step's prompts sample from different streams


@dataclass(frozen=True)
class Prompt:
    """One training line: its prompt's tokens and the whole line (the grader's `item`)."""

    input_ids: list[int]
    item: dict[str, Any] = field(repr=False)
    line: int = 0
    n_cut_tokens: int = 0

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def n_loss_tokens(self) -> int:
        return 0  # answers are sampled, not given


def load_prompts(path: Path, tokenizer: Any, max_seq_length: int) -> list[Prompt]:
    """Every line of a reinforcement file: `messages` ending before the answer, optional `tools`."""
    prompts = []
    for line_no, value in iter_json_lines(path):
        if isinstance(value, BadLine):
            raise DataError(f"{path.name}: {value.message}")
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("messages"), list)
            or not value["messages"]
        ):
            raise DataError(
                f'{path.name} line {line_no}: reinforcement fine-tuning needs {{"messages": [...]}} prompts'
            )
        messages = prompt_messages(value["messages"])  # a reference answer is the grader's business
        try:
            ids = render_prompt(tokenizer, messages, tools_of(value))
        except (ValueError, TypeError, KeyError) as exc:
            raise DataError(f"{path.name} line {line_no}: {exc}") from None
        cut = max(0, len(ids) - max_seq_length)
        prompts.append(Prompt(ids[cut:], value, line_no, cut))
    if not prompts:
        raise DataError(f"{path.name} has no examples")
    return prompts


PromptRun = Run[Prompt]


@dataclass
class Rollout:
    """One sampled answer: its prompt, tokens, text and grade."""

    prompt: int  # index among the step's prompts: its group
    prompt_ids: list[int]
    answer_ids: list[int]
    text: str
    outcome: Outcome | None = None
    advantage: float = 0.0
    informative: bool = False  # its group's rewards differ: the update learns from it


def train_reinforcement(
    config: SFTConfig, reporter: Reporter, *, resume_from: Path | None = None
) -> TrainResult:
    dist = init_distributed()
    run: PromptRun | None = None
    try:
        if dist.is_distributed:
            raise ConfigError("reinforcement runs in one process: set OPENFT_TRAIN_PROCESSES=1")
        run = prepare_run(
            config, reporter if dist.is_main else SilentReporter(), dist, resume_from, load_prompts
        )
        judge = RecipeJudge(_settings(run)["judges"]) if _settings(run).get("judges") else None
        try:
            with model_context(run):
                return _train(run, judge)
        finally:
            if judge is not None:
                judge.close()
    finally:
        del run
        gc.collect()
        close_distributed()


def _train(run: PromptRun, judge: Judge | None) -> TrainResult:
    plan, state = run.plan, run.state
    for step in range(state.step + 1, plan.total_steps + 1):
        indices = plan.examples_of(step)
        seconds: dict[str, float] = {}
        rollouts = _rollouts(
            run,
            [run.train[i] for i in indices],
            seed=run.config.seed * 100_003 + step,
            judge=judge,
            seconds=seconds,
        )
        started = time.perf_counter()
        metrics = _train_step(run, step, rollouts)
        seconds["update"] = time.perf_counter() - started
        metrics |= {f"train_{part}_seconds": value for part, value in seconds.items()}
        state.step = step
        state.trained_tokens += sum(len(r.prompt_ids) + len(r.answer_ids) for r in rollouts)
        metrics |= _validation_metrics(run, step, judge)
        _report(run, metrics)
        if plan.is_epoch_end(step):
            save(run, plan.epoch_of(step), "epoch", metrics)
        stopped = obey_control(run, metrics) if step < plan.total_steps else None
        if stopped is not None:
            return stopped
    return finish(run)


def _settings(run: PromptRun) -> Mapping[str, Any]:
    assert run.config.reinforcement is not None  # SFTConfig checks it
    return run.config.reinforcement


@torch.no_grad()
def _rollouts(
    run: PromptRun,
    prompts: Sequence[Prompt],
    *,
    seed: int,
    group: int | None = None,
    greedy: bool = False,
    judge: Judge | None = None,
    seconds: dict[str, float] | None = None,
) -> list[Rollout]:
    """`group` answers to each prompt from the current policy, graded; the time each part took is added
    to `seconds` ("sampling", "grading")."""
    started = time.perf_counter()
    settings = _settings(run)
    group = group or int(settings["group_size"])
    stops = stop_token_ids(run.tokenizer)
    grammar = _answer_grammar(run, stops)
    policy = ModelRef("the policy", "", None, "", run.config.max_seq_length)
    requests = [
        GenerationRequest(
            policy,
            prompt.input_ids,
            SamplingParams(
                max_tokens=int(settings["max_new_tokens"]),
                temperature=0.0 if greedy else float(settings["temperature"]),
                n=group,
                # Each prompt's group from its own seeded streams: the same step samples the same
                # answers, resumed or not.
                seed=seed * _SEED_MIX + index,
            ),
            tuple(stops),
            grammar,
        )
        for index, prompt in enumerate(prompts)
    ]
    run.model.eval()
    try:
        # Through the serving engine's batch, on the policy's own weights: every group decodes
        # together and an answer that ends leaves the batch at once.
        with run.autocast():
            answers = generate_token_ids(run.model, run.tokenizer, requests, run.dist.device)
    finally:
        run.model.train()
    rollouts = [
        Rollout(index, prompt.input_ids, answer, _text(run, answer, stops))
        for index, (prompt, choices) in enumerate(zip(prompts, answers, strict=True))
        for answer in choices
    ]
    sampled = time.perf_counter()
    outcomes = grade_samples(
        settings["grader"],
        [(r.text, prompts[r.prompt].item) for r in rollouts],
        judge=judge,
        embed=shared_embedder,
    )
    for rollout, outcome in zip(rollouts, outcomes, strict=True):
        rollout.outcome = outcome
    if seconds is not None:
        seconds["sampling"] = sampled - started
        seconds["grading"] = time.perf_counter() - sampled
    return rollouts


def _answer_grammar(run: PromptRun, stops: list[int]) -> OutputGrammar | None:
    """The job's response_format as a grammar over the model's vocabulary (None: free answers)."""
    return output_grammar(
        _settings(run).get("response_format"),
        run.tokenizer,
        tokenizer_key=run.config.base_model_path,
        stop_token_ids=stops,
        param="method.reinforcement.response_format",
    )


def _text(run: PromptRun, answer: list[int], stops: list[int]) -> str:
    return run.tokenizer.decode([t for t in answer if t not in stops], skip_special_tokens=True)


def _train_step(run: PromptRun, step: int, rollouts: list[Rollout]) -> dict[str, float]:
    _set_advantages(rollouts)
    settings = _settings(run)
    kl_coef = float(settings["kl_coef"])
    # A group whose answers all earned the same reward says nothing about which answer is better: it is
    # left out of the update (as DAPO's dynamic sampling leaves it out), so a step where every group
    # agrees (all right, or all wrong) does not move the policy by the KL term alone.
    n_learned = sum(1 for r in rollouts if r.informative)
    scale = 1.0 / max(1, n_learned)
    loss_total = kl_total = 0.0
    for batch in _micro_batches(rollouts, run):
        examples = [_example(r) for r in batch]
        lengths = torch.tensor([max(1, len(r.answer_ids)) for r in batch], device=run.dist.device)
        advantages = torch.tensor([r.advantage for r in batch], device=run.dist.device)
        learned = torch.tensor([float(r.informative) for r in batch], device=run.dist.device)
        with torch.no_grad(), run.model.disable_adapter(), run.autocast():
            reference = conversation_log_probs(run, examples)
        with run.autocast(), torch.set_grad_enabled(n_learned > 0):
            policy = conversation_log_probs(run, examples)
        mean_policy, mean_reference = policy / lengths, reference / lengths
        kl = mean_policy - mean_reference
        loss = (learned * (-advantages * mean_policy + kl_coef * kl)).sum()
        if n_learned:
            (loss * scale).backward()
        loss_total += float(loss.detach())
        kl_total += float(kl.detach().sum())
    if n_learned:
        grad_norm = clip_gradients(run.optimizer, run.model, run.config.max_grad_norm)
        stop_if_diverged(run, step, {"training loss": loss_total * scale, "gradient norm": grad_norm})
    run.optimizer.step()  # without gradients (every group agreed) it moves nothing
    run.scheduler.step()  # the schedule follows the steps, updated or not
    run.optimizer.zero_grad(set_to_none=True)
    return {
        TRAIN_LOSS: loss_total * scale,
        **_reward_metrics("train", rollouts),
        "train_kl": kl_total / len(rollouts),
        "train_groups_learned": n_learned / len(rollouts),
    }


def _set_advantages(rollouts: list[Rollout]) -> None:
    """(reward - the group's mean) / the group's standard deviation; 0 where the group agrees."""
    groups: dict[int, list[Rollout]] = {}
    for rollout in rollouts:
        groups.setdefault(rollout.prompt, []).append(rollout)
    for members in groups.values():
        rewards = [_reward(r) for r in members]
        mean = sum(rewards) / len(rewards)
        std = math.sqrt(sum((x - mean) ** 2 for x in rewards) / len(rewards))
        for rollout, reward in zip(members, rewards, strict=True):
            rollout.advantage = (reward - mean) / std if std > 1e-6 else 0.0
            rollout.informative = std > 1e-6


def _reward(rollout: Rollout) -> float:
    return rollout.outcome.reward if rollout.outcome is not None else 0.0


def _reward_metrics(prefix: str, rollouts: list[Rollout]) -> dict[str, float]:
    rewards = [_reward(r) for r in rollouts]
    mean = sum(rewards) / len(rewards)
    metrics = {
        f"{prefix}_reward_mean": mean,
        f"{prefix}_reward_std": math.sqrt(sum((x - mean) ** 2 for x in rewards) / len(rewards)),
        f"{prefix}_answer_tokens": sum(len(r.answer_ids) for r in rollouts) / len(rollouts),
        f"{prefix}_grader_error_rate": sum(1 for r in rollouts if r.outcome and r.outcome.errors.any())
        / len(rollouts),
    }
    names = {name for r in rollouts if r.outcome for name in r.outcome.sub_rewards}
    for name in sorted(names):
        values = [r.outcome.sub_rewards.get(name, 0.0) for r in rollouts if r.outcome]
        metrics[f"{prefix}_reward_{name}"] = sum(values) / len(values)
    return metrics


def _validation_metrics(run: PromptRun, step: int, judge: Judge | None) -> dict[str, float]:
    """Every `eval_interval` steps and at the end: one greedy answer to each of the first `eval_samples`
    validation prompts (training prompts when there is no validation file), graded."""
    settings = _settings(run)
    if step % int(settings["eval_interval"]) and step != run.plan.total_steps:
        return {}
    prompts = (run.valid or run.train)[: int(settings["eval_samples"])]
    rollouts = _rollouts(run, prompts, seed=run.config.seed, group=1, greedy=True, judge=judge)
    metrics = _reward_metrics("valid", rollouts)
    metrics.pop("valid_reward_std")
    return metrics


def _report(run: PromptRun, metrics: dict[str, float]) -> None:
    step = run.state.step
    progress = getattr(run.reporter, "progress", None)
    if progress is not None:
        progress(step, run.plan.total_steps, run.plan.epoch_of(step), run.state.trained_tokens)
    run.reporter.metrics(step, run.plan.total_steps, metrics)
    if run.results is not None:
        run.results.append(step, metrics)


def _example(rollout: Rollout) -> TokenizedExample:
    return TokenizedExample(
        input_ids=rollout.prompt_ids + rollout.answer_ids,
        loss_mask=[0] * len(rollout.prompt_ids) + [1] * len(rollout.answer_ids),
    )


def _micro_batches(rollouts: list[Rollout], run: PromptRun) -> list[list[Rollout]]:
    sizes = [len(rollout.prompt_ids) + len(rollout.answer_ids) for rollout in rollouts]
    return group_by_tokens(rollouts, sizes, run.config.max_tokens_per_micro_batch)


def recipe_main(config: SFTConfig, resume_from: Path | None = None) -> int:
    """The reinforcement recipe as a job's process (openft.train.run.run_recipe)."""
    return run_recipe(train_reinforcement, config, resume_from)
