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
# Rows of pairs that share a prefix (pack_pairs): (prefix, first branch, second branch) lengths per pair.
SHARED_PREFIX_KWARG = "openft_shared_prefix"
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
    # pack_pairs: which conversation each target belongs to, and the row's (prefix, branch, branch)
    # layout for the attention; None for rows of whole conversations (pack).
    owners: torch.Tensor | None = None
    shared_prefix: list[tuple[int, int, int]] | None = None

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
            owners=self.owners.to(device) if self.owners is not None else None,
            shared_prefix=self.shared_prefix,
        )

    def attention_kwargs(self) -> dict[str, Any]:
        """What packed_attention needs to keep attention inside each conversation of the row."""
        if self.shared_prefix is not None:
            return {SHARED_PREFIX_KWARG: self.shared_prefix}
        return {SEQ_LENS_KWARG: self.seq_lens}


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


def pack_pairs(
    pairs: Sequence[tuple[TokenizedExample, TokenizedExample]], *, pad_to_multiple: int = 1
) -> PackedBatch:
    """Pairs of conversations that begin alike (a prompt and its two answers), each laid out once as
    [shared prefix | rest of the first | rest of the second]: the prompt's tokens go through the model
    once for both answers. Each rest continues the prefix's positions and attends to the prefix and to
    itself, never to the other rest, so every conversation's log-probabilities are what `pack` gives.
    The prefix ends before the first trained token of either conversation; targets are in conversation
    order (first, second, first, ...), `owners` saying whose each is."""
    input_ids: list[int] = []
    position_ids: list[int] = []
    target_positions: list[int] = []
    targets: list[int] = []
    owners: list[int] = []
    layout: list[tuple[int, int, int]] = []
    for index, (first, second) in enumerate(pairs):
        shared = _shared_prefix(first, second)
        offset = len(input_ids)
        input_ids += first.input_ids + second.input_ids[shared:]
        position_ids += [*range(first.n_tokens), *range(shared, second.n_tokens)]
        layout.append((shared, first.n_tokens - shared, second.n_tokens - shared))
        for owner, example, start in (
            (2 * index, first, offset),
            (2 * index + 1, second, offset + first.n_tokens - shared),
        ):
            for p in range(example.n_tokens - 1):
                if example.loss_mask[p + 1]:
                    # The prefix's last position predicts both answers' first token.
                    target_positions.append(offset + p if p < shared else start + p)
                    targets.append(example.input_ids[p + 1])
                    owners.append(owner)
    n_tokens, n_targets = len(input_ids), len(targets)
    row_padding = -n_tokens % pad_to_multiple
    if row_padding:  # a segment of its own, attending only to itself
        input_ids += [input_ids[-1]] * row_padding
        position_ids += range(row_padding)
        layout.append((row_padding, 0, 0))
    target_padding = -n_targets % pad_to_multiple if n_targets else 0
    target_positions += [0] * target_padding
    targets += [IGNORED_TARGET] * target_padding
    owners += [0] * target_padding
    return PackedBatch(
        input_ids=torch.tensor([input_ids], dtype=torch.long),
        position_ids=torch.tensor([position_ids], dtype=torch.long),
        seq_lens=[length for lengths in layout for length in lengths if length],
        target_positions=torch.tensor(target_positions, dtype=torch.long),
        targets=torch.tensor(targets, dtype=torch.long),
        n_tokens=n_tokens,
        n_targets=n_targets,
        owners=torch.tensor(owners, dtype=torch.long),
        shared_prefix=layout,
    )


def _shared_prefix(first: TokenizedExample, second: TokenizedExample) -> int:
    """How many leading tokens both conversations share before either's first trained token."""
    limit = min(first.n_tokens, second.n_tokens) - 1  # each keeps at least one token of its own
    for example in (first, second):
        trained = next((p for p, weight in enumerate(example.loss_mask) if weight), None)
        if trained is not None:
            limit = min(limit, trained)
    shared = 0
    while shared < limit and first.input_ids[shared] == second.input_ids[shared]:
        shared += 1
    return shared


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
    shared_prefix = kwargs.pop(SHARED_PREFIX_KWARG, None)
    if seq_lens is None and shared_prefix is None:  # generation, or no packing: exactly "sdpa"
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    gqa = query.shape[1] != key.shape[1]
    dtype = query.dtype
    # Under bf16 autocast on a CPU, attention runs in fp32 (see openft.train.precision).
    in_fp32 = query.device.type == "cpu" and torch.is_autocast_enabled("cpu")
    if in_fp32:
        query, key, value = query.float(), key.float(), value.float()

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None, scale=scaling, dropout_p=dropout, enable_gqa=gqa
        )

    with torch.autocast("cpu", enabled=False) if in_fp32 else nullcontext():
        if shared_prefix is None:
            pieces = [
                attend(q, k, v, None)
                for q, k, v in zip(
                    query.split(seq_lens, 2), key.split(seq_lens, 2), value.split(seq_lens, 2), strict=True
                )
            ]
        else:
            pieces = _shared_prefix_attention(query, key, value, shared_prefix, attend)
    return torch.cat(pieces, dim=2).transpose(1, 2).to(dtype), None


def _shared_prefix_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    layout: list[tuple[int, int, int]],
    attend: Any,
) -> list[torch.Tensor]:
    """Per pair: the prefix and the first branch are one causal sequence; the second branch attends
    to the whole prefix and causally to itself."""
    pieces = []
    start = 0
    for prefix, first, second in layout:
        head = slice(start, start + prefix + first)
        pieces.append(attend(query[:, :, head], key[:, :, head], value[:, :, head], None))
        if second:
            tail = slice(start + prefix + first, start + prefix + first + second)
            keys = torch.cat([key[:, :, start : start + prefix], key[:, :, tail]], dim=2)
            values = torch.cat([value[:, :, start : start + prefix], value[:, :, tail]], dim=2)
            # Row j of the branch sees the prefix and branch tokens 0..j.
            mask = torch.ones(second, prefix + second, dtype=torch.bool, device=query.device).tril(prefix)
            pieces.append(attend(query[:, :, tail], keys, values, mask))
        start += prefix + first + second
    return pieces


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
