"""Token loss over packed batches: the sum of cross-entropies at trained positions, and the hits.

Sums, not means: a step's micro-batches (and processes) each add their part and the step divides once
by the step's total number of trained tokens, so the loss is the mean over the step's trained tokens
however the work was split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from openft.train.examples import TokenizedExample
from openft.train.packing import IGNORED_TARGET, SEQ_LENS_KWARG, PackedBatch, group_for_packing, pack


class TokenLoss(torch.nn.Module):
    """Wraps a causal LM; forward returns (loss sum, correct predictions) over the trained positions.

    It is the module DistributedDataParallel wraps, so that gradient sync hooks see the whole forward.
    """

    def __init__(self, model: Any, *, packed: bool) -> None:
        super().__init__()
        self.model = model
        self.packed = packed

    def forward(self, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        extra = {SEQ_LENS_KWARG: batch.seq_lens} if self.packed else {}
        output = self.model(
            input_ids=batch.input_ids,
            position_ids=batch.position_ids,
            logits_to_keep=batch.target_positions,
            use_cache=False,
            **extra,
        )
        logits = output.logits[0].float()
        # Padded targets (IGNORED_TARGET) add no loss and never match an argmax.
        loss_sum = F.cross_entropy(logits, batch.targets, reduction="sum", ignore_index=IGNORED_TARGET)
        n_correct = (logits.detach().argmax(dim=-1) == batch.targets).sum()
        return loss_sum, n_correct


@dataclass
class LossTotals:
    """Sums over some trained tokens; `mean_loss` and `accuracy` are OpenAI's loss and mean token accuracy."""

    loss_sum: float = 0.0
    n_correct: float = 0.0
    n_loss_tokens: float = 0.0

    def add(self, loss_sum: float, n_correct: float, n_loss_tokens: float) -> None:
        self.loss_sum += loss_sum
        self.n_correct += n_correct
        self.n_loss_tokens += n_loss_tokens

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / self.n_loss_tokens if self.n_loss_tokens else 0.0

    @property
    def accuracy(self) -> float:
        return self.n_correct / self.n_loss_tokens if self.n_loss_tokens else 0.0

    def as_list(self) -> list[float]:
        return [self.loss_sum, self.n_correct, self.n_loss_tokens]


@torch.no_grad()
def evaluate(
    loss_module: TokenLoss,
    examples: Sequence[TokenizedExample],
    *,
    max_tokens: int,
    device: torch.device,
    autocast: Any,
    pad_to_multiple: int = 1,
) -> LossTotals:
    """Loss sums of `examples` under the current weights (no gradients)."""
    totals = LossTotals()
    was_training = loss_module.training
    loss_module.eval()
    try:
        for group in group_for_packing(examples, max_tokens, packed=loss_module.packed):
            batch = pack(group, pad_to_multiple=pad_to_multiple).to(device)
            if batch.n_targets == 0:
                continue
            with autocast():
                loss_sum, n_correct = loss_module(batch)
            totals.add(loss_sum.item(), n_correct.item(), batch.n_targets)
    finally:
        loss_module.train(was_training)
    return totals
