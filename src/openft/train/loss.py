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

from openft.train.chunked_loss import DEFAULT_CHUNK_SIZE, LossWorkspace, chunked_cross_entropy
from openft.train.examples import TokenizedExample
from openft.train.packing import IGNORED_TARGET, SEQ_LENS_KWARG, PackedBatch, group_for_packing, pack


class TokenLoss(torch.nn.Module):
    """Wraps a causal LM; forward returns (loss sum, correct predictions) over the trained positions.

    It is the module DistributedDataParallel wraps, so that gradient sync hooks see the whole forward.
    Where the model's output layer is a plain linear layer, the decoder's hidden states at the trained
    positions go through it and the cross-entropy in chunks of `chunk_size` positions
    (openft.train.chunked_loss), so the full logits never exist; otherwise (or with `chunk_size=None`)
    the model computes the logits at the trained positions at once.
    """

    def __init__(self, model: Any, *, packed: bool, chunk_size: int | None = DEFAULT_CHUNK_SIZE) -> None:
        super().__init__()
        self.model = model
        self.packed = packed
        self.chunk_size = chunk_size
        self.workspace = LossWorkspace()  # the chunked loss's buffers, kept from step to step

    def forward(self, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        extra = {SEQ_LENS_KWARG: batch.seq_lens} if self.packed else {}
        head = _plain_output_layer(self.model) if self.chunk_size else None
        if head is not None and self.chunk_size:
            output = self.model.get_decoder()(
                input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False, **extra
            )
            hidden = output.last_hidden_state[0, batch.target_positions]
            return chunked_cross_entropy(
                hidden,
                head.weight,
                head.bias,
                batch.targets,
                chunk_size=self.chunk_size,
                workspace=self.workspace,
            )
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


# Config fields of models whose logits are more than the output layer's product.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def _plain_output_layer(model: Any) -> torch.nn.Linear | None:
    """The output layer if logits are exactly `decoder(...) -> Linear` (so chunking is exact), else None."""
    get_decoder = getattr(model, "get_decoder", None)
    get_head = getattr(model, "get_output_embeddings", None)
    if get_decoder is None or get_head is None:
        return None
    config = getattr(model, "config", None)
    if any(getattr(config, name, None) not in (None, 1, 1.0) for name in _LOGIT_TRANSFORMS):
        return None
    head = get_head()
    # An adapted output layer (a LoRA on lm_head) is not a plain Linear and keeps the model's own path.
    if type(head) is not torch.nn.Linear or get_decoder() is None:
        return None
    return head


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
