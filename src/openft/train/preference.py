"""Preference pairs for DPO: tokenized pairs, each output's log-probability, and the sigmoid DPO loss.

A pair is two conversations, the prompt followed by the preferred or by the non-preferred output; only
that final output carries loss (assistant turns inside the prompt are context). Both conversations of
every pair in a micro-batch are packed into one row like supervised examples, so one forward pass gives
the log-probabilities of all of them.

The loss is DPO's sigmoid loss: with r = beta * (log pi(y|x) - log pi_ref(y|x)) for each output,
loss = -log sigmoid(r_preferred - r_non_preferred), plus, weighted by `sft_weight`, the supervised loss of
the preferred output (its mean negative log-likelihood per token; RPO). Like the supervised loss both are
returned as sums (over pairs), and a step divides once by its number of pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from openft.data.lines import BadLine, iter_json_lines
from openft.data.render import render_chat, truncate
from openft.data.validate_other import preference_outputs, validate_preference
from openft.train.examples import DataError, TokenizedExample, tools_of
from openft.train.packing import IGNORED_TARGET, PackedBatch


@dataclass(frozen=True)
class TokenizedPair:
    preferred: TokenizedExample
    non_preferred: TokenizedExample
    line: int = 0

    @property
    def n_tokens(self) -> int:
        return self.preferred.n_tokens + self.non_preferred.n_tokens

    @property
    def n_loss_tokens(self) -> int:
        return self.preferred.n_loss_tokens + self.non_preferred.n_loss_tokens

    @property
    def n_cut_tokens(self) -> int:
        return self.preferred.n_cut_tokens + self.non_preferred.n_cut_tokens

    def conversations(self) -> tuple[TokenizedExample, TokenizedExample]:
        return self.preferred, self.non_preferred


def tokenize_pair(
    tokenizer: Any, example: Mapping[str, Any], max_seq_length: int, line: int = 0
) -> TokenizedPair:
    """Both conversations of one preference example, each truncated from the end to `max_seq_length`."""
    prompt_input = example["input"]
    # Assistant turns of the prompt are what was said before: context, never trained on.
    prompt = [
        {**message, "weight": 0} if message.get("role") == "assistant" else message
        for message in prompt_input["messages"]
    ]
    tools = tools_of(prompt_input)
    preferred, non_preferred = preference_outputs(dict(example))

    def conversation(output: list[Mapping[str, Any]]) -> TokenizedExample:
        whole = render_chat(tokenizer, [*prompt, {**output[0], "weight": 1}], tools)
        rendered = truncate(whole, max_seq_length)
        n_cut = len(whole.input_ids) - len(rendered.input_ids)
        return TokenizedExample(rendered.input_ids, rendered.loss_mask, line=line, n_cut_tokens=n_cut)

    return TokenizedPair(conversation(preferred), conversation(non_preferred), line=line)


def load_pairs(path: Path, tokenizer: Any, max_seq_length: int) -> list[TokenizedPair]:
    """Every pair of a preference JSONL file, in file order; a bad line raises DataError naming it."""
    pairs = []
    for line_no, value in iter_json_lines(path):
        if isinstance(value, BadLine):
            raise DataError(f"{path.name}: {value.message}")
        problems = validate_preference(value, line_no) if isinstance(value, dict) else None
        if problems is None or problems:
            what = problems[0].message if problems else "the line is not a JSON object"
            raise DataError(
                f"{path.name} line {line_no}: preference fine-tuning needs preference examples "
                f'({{"input": ..., "preferred_output": ..., "non_preferred_output": ...}}): {what}'
            )
        try:
            pairs.append(tokenize_pair(tokenizer, value, max_seq_length, line_no))
        except (ValueError, TypeError, KeyError) as exc:
            raise DataError(f"{path.name} line {line_no}: {exc}") from None
    if not pairs:
        raise DataError(f"{path.name} has no examples")
    return pairs


def flatten(pairs: Sequence[TokenizedPair]) -> list[TokenizedExample]:
    """The pairs' conversations in packing order: preferred, non-preferred, preferred, ..."""
    return [conversation for pair in pairs for conversation in pair.conversations()]


def sequence_log_probs(model: Any, batch: PackedBatch, n_sequences: int, *, packed: bool) -> torch.Tensor:
    """log p(trained tokens | what comes before) summed per conversation of the row: shape (n_sequences,)."""
    extra = batch.attention_kwargs() if packed else {}
    output = model(
        input_ids=batch.input_ids,
        position_ids=batch.position_ids,
        logits_to_keep=batch.target_positions,
        use_cache=False,
        **extra,
    )
    logits = output.logits[0].float()
    real = batch.targets != IGNORED_TARGET
    token_log_probs = -F.cross_entropy(logits, batch.targets.clamp_min(0), reduction="none") * real
    owner = batch.owners
    if owner is None:  # which conversation each trained position belongs to: they lie end to end
        ends = torch.tensor(batch.seq_lens[:n_sequences], device=logits.device).cumsum(0)
        owner = torch.searchsorted(ends, batch.target_positions, right=True).clamp_max(n_sequences - 1)
    return torch.zeros(n_sequences, device=logits.device).index_add_(0, owner, token_log_probs)


@dataclass
class PreferenceLoss:
    """A micro-batch's losses, summed over its pairs, and each pair's implicit rewards (no gradients)."""

    loss_sum: torch.Tensor  # the sigmoid DPO loss
    sft_sum: torch.Tensor  # each preferred output's mean negative log-likelihood per token
    preferred_rewards: torch.Tensor  # (pairs,)
    non_preferred_rewards: torch.Tensor  # (pairs,)

    def objective(self, sft_weight: float) -> torch.Tensor:
        """What a step minimises: DPO's loss plus `sft_weight` times the supervised loss on the preferred
        outputs. The supervised term keeps the preferred outputs likely (the DPO loss alone can grow the
        margin by making both outputs unlikely, and a model that learnt it that way no longer ends its
        answers: docs/training.md)."""
        return self.loss_sum + sft_weight * self.sft_sum if sft_weight else self.loss_sum


def dpo_loss(
    policy: torch.Tensor, reference: torch.Tensor, beta: float, preferred_tokens: torch.Tensor
) -> PreferenceLoss:
    """`policy` and `reference` hold log-probabilities in packing order (preferred, non-preferred, ...);
    `preferred_tokens` the number of trained tokens of each preferred output."""
    rewards = beta * (policy - reference)
    preferred, non_preferred = rewards[0::2], rewards[1::2]
    losses = -F.logsigmoid(preferred - non_preferred)
    sft = -(policy[0::2] / preferred_tokens.to(policy.device).clamp_min(1))
    return PreferenceLoss(losses.sum(), sft.sum(), preferred.detach(), non_preferred.detach())


def preferred_token_counts(pairs: Sequence[TokenizedPair]) -> torch.Tensor:
    return torch.tensor([pair.preferred.n_loss_tokens for pair in pairs], dtype=torch.float32)


@dataclass
class PreferenceTotals:
    """Sums over some pairs; the means are what the events and the result file report."""

    loss_sum: float = 0.0
    sft_sum: float = 0.0
    n_pairs: float = 0.0
    n_preferred_higher: float = 0.0  # pairs whose preferred output earns the higher reward
    preferred_reward_sum: float = 0.0
    non_preferred_reward_sum: float = 0.0

    def add(self, loss: PreferenceLoss) -> None:
        self.loss_sum += float(loss.loss_sum.detach())
        self.sft_sum += float(loss.sft_sum.detach())
        self.n_pairs += len(loss.preferred_rewards)
        self.n_preferred_higher += float((loss.preferred_rewards > loss.non_preferred_rewards).sum())
        self.preferred_reward_sum += float(loss.preferred_rewards.sum())
        self.non_preferred_reward_sum += float(loss.non_preferred_rewards.sum())

    def _mean(self, total: float) -> float:
        return total / self.n_pairs if self.n_pairs else 0.0

    @property
    def mean_loss(self) -> float:
        return self._mean(self.loss_sum)

    @property
    def sft_loss(self) -> float:
        return self._mean(self.sft_sum)

    @property
    def reward_accuracy(self) -> float:
        return self._mean(self.n_preferred_higher)

    @property
    def preferred_reward(self) -> float:
        return self._mean(self.preferred_reward_sum)

    @property
    def non_preferred_reward(self) -> float:
        return self._mean(self.non_preferred_reward_sum)

    @property
    def reward_margin(self) -> float:
        return self.preferred_reward - self.non_preferred_reward
