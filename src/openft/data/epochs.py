"""The "auto" epoch rule, the trained-token count and the training-time estimate.

The constants are OpenAI's (the fine-tuning cookbook's data-prep notebook): aim for 3 epochs, but see
at least 100 examples and at most 25,000 examples' worth of steps in total, with 1 to 25 epochs.
Examples longer than the context are truncated, not dropped, so each one counts at most
`context_length` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


def auto_epochs(n_examples: int) -> int:
    """What `n_epochs: "auto"` resolves to for a training file of `n_examples` examples."""
    if n_examples <= 0:
        raise ValueError("the epoch rule needs at least one example")
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


@dataclass(frozen=True)
class TrainingEstimate:
    n_epochs: int
    tokens_per_epoch: int  # the sum over examples of min(context_length, example tokens)
    trained_tokens: int  # n_epochs × tokens_per_epoch: what the job reports as `trained_tokens`
    tokens_per_s: float | None  # measured training throughput on this machine, when the caller had one
    estimated_training_s: float | None  # trained_tokens / tokens_per_s


def estimate_training(
    n_examples: int, tokens_per_epoch: int, *, n_epochs: int | None = None, tokens_per_s: float | None = None
) -> TrainingEstimate:
    """Epochs (the auto rule unless `n_epochs` is given), trained tokens and, with a throughput, time."""
    epochs = n_epochs if n_epochs is not None else auto_epochs(n_examples)
    trained_tokens = epochs * tokens_per_epoch
    seconds = trained_tokens / tokens_per_s if tokens_per_s else None
    return TrainingEstimate(epochs, tokens_per_epoch, trained_tokens, tokens_per_s, seconds)


@dataclass(frozen=True)
class ReinforcementEstimate:
    """What a reinforcement job does with a prompt file: each step samples `samples_per_prompt` answers
    to each of `batch_size` prompts and grades them. Sampling and grading dominate its time, which a
    token count does not predict, so there is no time estimate."""

    n_epochs: int
    batch_size: int
    steps_per_epoch: int  # ceil(prompts / batch_size)
    n_steps: int  # steps_per_epoch × n_epochs
    samples_per_prompt: int  # the group each answer's advantage is relative to
    n_sampled_answers: int  # prompts × samples_per_prompt × n_epochs: answers generated and graded
    answer_tokens: int  # the longest answer sampled (the reasoning_effort's budget)


def estimate_reinforcement(
    n_prompts: int,
    *,
    batch_size: int,
    samples_per_prompt: int,
    answer_tokens: int,
    n_epochs: int | None = None,
) -> ReinforcementEstimate:
    """Epochs (the auto rule unless given), steps and sampled answers of a reinforcement job."""
    epochs = n_epochs if n_epochs is not None else auto_epochs(n_prompts)
    batch = max(1, min(batch_size, n_prompts))
    steps_per_epoch = -(-n_prompts // batch)
    return ReinforcementEstimate(
        n_epochs=epochs,
        batch_size=batch,
        steps_per_epoch=steps_per_epoch,
        n_steps=steps_per_epoch * epochs,
        samples_per_prompt=samples_per_prompt,
        n_sampled_answers=n_prompts * samples_per_prompt * epochs,
        answer_tokens=answer_tokens,
    )
