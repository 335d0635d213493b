"""Packed batches: a micro-batch's examples laid end to end in one row, with no padding between them.

Attention must still stay inside each example. Transformers' own packed mode builds a T x T
block-diagonal mask for a row of T tokens (memory and compute quadratic in the whole row). Instead, an
attention function registered with transformers runs causal attention on each example's slice of the
row: the cost is the sum of the examples' squares and no mask is ever built. Everything else in the
model (projections, MLPs, norms) runs once over the whole row, which is where the time goes.

The model is asked for logits only at the positions that carry loss (`logits_to_keep` with indices),
so the output layer and the cross-entropy never touch prompt tokens.

One exception, bf16 on a CPU: there `pack(..., pad_to_multiple=128)` appends a segment of its own to
the row, and ignored targets to the trained positions, so that matrix shapes repeat (see
openft.train.precision).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from openft.train.examples import TokenizedExample

T = TypeVar("T")
PACKED_ATTENTION = "openft_packed"
SEQ_LENS_KWARG = "openft_seq_lens"
IGNORED_TARGET = -100  # cross_entropy's ignore_index: a padded trained position adds no loss


@dataclass
class PackedBatch:
    input_ids: torch.Tensor  # (1, T)
    position_ids: torch.Tensor  # (1, T): restart at 0 for every example
    seq_lens: list[int]  # tokens per example, in row order
    target_positions: torch.Tensor  # (N,) positions whose next token carries loss
    targets: torch.Tensor  # (N,) those next tokens; IGNORED_TARGET where N was padded
    n_tokens: int  # the examples' tokens, padding excluded
    n_targets: int  # trained positions, padding excluded

    def to(self, device: torch.device) -> PackedBatch:
        if device.type == "cpu":
            return self
        return PackedBatch(
            input_ids=self.input_ids.to(device),
            position_ids=self.position_ids.to(device),
            seq_lens=self.seq_lens,
            target_positions=self.target_positions.to(device),
            targets=self.targets.to(device),
            n_tokens=self.n_tokens,
            n_targets=self.n_targets,
        )


def pack(examples: Sequence[TokenizedExample], *, pad_to_multiple: int = 1) -> PackedBatch:
    """Lay `examples` end to end; position p predicts token p+1 of its example where that token has loss.

    With `pad_to_multiple` > 1, the row and the trained positions are each padded to a multiple of it
    (see openft.train.precision): the row with a segment of its own, which no example attends to, and
    the trained positions with targets that carry no loss. Causal attention keeps trailing padding out
    of every example's view even when the model cannot pack.
    """
    input_ids: list[int] = []
    position_ids: list[int] = []
    target_positions: list[int] = []
    targets: list[int] = []
    for example in examples:
        offset = len(input_ids)
        input_ids += example.input_ids
        position_ids += range(example.n_tokens)
        for p in range(example.n_tokens - 1):
            if example.loss_mask[p + 1]:
                target_positions.append(offset + p)
                targets.append(example.input_ids[p + 1])
    seq_lens = [example.n_tokens for example in examples]
    n_tokens, n_targets = len(input_ids), len(targets)
    row_padding = -n_tokens % pad_to_multiple
    if row_padding:
        input_ids += [examples[-1].input_ids[-1]] * row_padding
        position_ids += range(row_padding)
        seq_lens.append(row_padding)
    target_padding = -n_targets % pad_to_multiple if n_targets else 0
    target_positions += [0] * target_padding
    targets += [IGNORED_TARGET] * target_padding
    return PackedBatch(
        input_ids=torch.tensor([input_ids], dtype=torch.long),
        position_ids=torch.tensor([position_ids], dtype=torch.long),
        seq_lens=seq_lens,
        target_positions=torch.tensor(target_positions, dtype=torch.long),
        targets=torch.tensor(targets, dtype=torch.long),
        n_tokens=n_tokens,
        n_targets=n_targets,
    )


def group_for_packing(
    examples: Sequence[TokenizedExample], max_tokens: int, *, packed: bool
) -> list[list[TokenizedExample]]:
    """Consecutive examples grouped up to `max_tokens` per group; one per group if packing is unsupported."""
    if not packed:
        return [[example] for example in examples]
    return group_by_tokens(examples, [example.n_tokens for example in examples], max_tokens)


def group_by_tokens(items: Sequence[T], sizes: Sequence[int], max_tokens: int) -> list[list[T]]:
    """Consecutive items grouped up to `max_tokens` (their `sizes`) per group; a larger item alone."""
    groups: list[list[T]] = []
    tokens = 0
    for item, size in zip(items, sizes, strict=True):
        if not groups or tokens + size > max_tokens:
            groups.append([])
            tokens = 0
        groups[-1].append(item)
        tokens += size
    return groups


def packed_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Causal attention within each example of a packed row; plain SDPA when the row is not packed.

    query is (1, heads, T, head_dim), key and value (1, kv_heads, T, head_dim); the result is
    (1, T, heads, head_dim) as transformers expects.
    """
    seq_lens = kwargs.pop(SEQ_LENS_KWARG, None)
    if seq_lens is None:  # generation, or a caller that did not pack: behave exactly like "sdpa"
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    gqa = query.shape[1] != key.shape[1]
    dtype = query.dtype
    # Under bf16 autocast on a CPU, attention runs in fp32 (see openft.train.precision).
    in_fp32 = query.device.type == "cpu" and torch.is_autocast_enabled("cpu")
    if in_fp32:
        query, key, value = query.float(), key.float(), value.float()
    with torch.autocast("cpu", enabled=False) if in_fp32 else nullcontext():
        pieces = [
            F.scaled_dot_product_attention(
                q, k, v, is_causal=True, scale=scaling, dropout_p=dropout, enable_gqa=gqa
            )
            for q, k, v in zip(
                query.split(seq_lens, 2), key.split(seq_lens, 2), value.split(seq_lens, 2), strict=True
            )
        ]
    return torch.cat(pieces, dim=2).transpose(1, 2).to(dtype), None


AttentionInterface.register(PACKED_ATTENTION, packed_attention)


def supports_packing(model: Any) -> bool:
    """Whether `packed_attention` computes exactly what the model's own attention would.

    It needs a model that routes attention through transformers' AttentionInterface, with plain causal
    attention: no sliding window and no logit soft-capping. Other models train one example per forward
    pass (without padding, and in fp32 on a CPU under precision "auto": openft.train.precision).
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    sliding = getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True)
    softcap = getattr(config, "attn_logit_softcapping", None)
    return bool(getattr(base, "_supports_attention_backend", False)) and not sliding and not softcap


@contextmanager
def packed_attention_enabled(model: Any) -> Iterator[None]:
    """Route the model's attention through `packed_attention` while training; restore it afterwards."""
    config = model.config
    before = config._attn_implementation
    config._attn_implementation = PACKED_ATTENTION
    try:
        yield
    finally:
        config._attn_implementation = before
