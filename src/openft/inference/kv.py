"""Rows of a running batch's KV cache and attention mask: joining new rows, dropping padding.

A batch is left-padded: every row's newest token sits in the last column, and the mask marks which
earlier columns are real. Rows prefilled apart (requests that join a running batch) are padded on the
left to the batch's width (or the batch to theirs) and stacked under it; masked columns are never
attended to, so a row's output does not depend on how much padding it carries. Position ids are passed
explicitly, which is why padding never shifts a row's positions.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def stack(cache: Any, mask: torch.Tensor, new_cache: Any, new_mask: torch.Tensor) -> torch.Tensor:
    """Append `new_cache`'s rows to `cache` (in place); returns the mask of all rows."""
    width = max(mask.shape[1], new_mask.shape[1])
    for layer, new_layer in zip(cache.layers, new_cache.layers, strict=True):
        layer.keys = torch.cat([_pad_left(layer.keys, width), _pad_left(new_layer.keys, width)])
        layer.values = torch.cat([_pad_left(layer.values, width), _pad_left(new_layer.values, width)])
    return torch.cat([_pad_mask(mask, width), _pad_mask(new_mask, width)])


def trim(cache: Any, mask: torch.Tensor) -> torch.Tensor:
    """Drop leading columns that are padding in every row (left by rows that finished); returns the mask."""
    real = mask.any(dim=0).nonzero()
    start = int(real[0]) if len(real) else 0
    if start == 0:
        return mask
    for layer in cache.layers:
        layer.keys = layer.keys[:, :, start:]
        layer.values = layer.values[:, :, start:]
    return mask[:, start:]


def _pad_left(states: torch.Tensor, width: int) -> torch.Tensor:
    # (batch, heads, columns, head_dim): zeros before the first column.
    return F.pad(states, (0, 0, width - states.shape[2], 0))


def _pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    return F.pad(mask, (width - mask.shape[1], 0))
