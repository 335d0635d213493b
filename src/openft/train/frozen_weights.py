"""A LoRA run's frozen base weights, stored in the precision its matrix products run in.

Under bf16 autocast every product with a frozen fp32 weight first casts the weight to bf16, in the
forward pass and again in the backward pass (openft.train.lean_layers keeps no copy between them). For a
LoRA run those casts were about a tenth of a step on a CPU. The weights never change, so they are cast
once, here: the products see the same bf16 values, without the casts.

The fp32 weights are views of the checkpoint file mapped into memory. The other tensors are copied out
of that mapping too, so that nothing refers to it any more and it is released: the process does not
keep the fp32 originals beside the bf16 copies.

Only `nn.Linear` weights that do not train are stored low, and not one shared with an embedding (a tied
output layer): the embedding's fp32 values start the residual stream, which stays fp32.
"""

from __future__ import annotations

from typing import Any

import torch


def store_frozen_linear_weights(model: Any, dtype: torch.dtype) -> int:
    """Cast the frozen linear weights of `model` to `dtype` in place (the Parameter objects stay, so
    tied references and optimizers are unaffected); returns how many were cast."""
    embeddings = {id(module.weight) for module in model.modules() if isinstance(module, torch.nn.Embedding)}
    lowered: set[int] = set()
    for module in model.modules():
        weight = module.weight if type(module) is torch.nn.Linear else None
        if weight is None or weight.requires_grad or weight.dtype == dtype or id(weight) in embeddings:
            continue
        weight.data = weight.data.to(dtype)
        lowered.add(id(weight))
    if lowered:
        _copy_out_of_file_mappings(model, skip=lowered)
    return len(lowered)


def _copy_out_of_file_mappings(model: Any, skip: set[int]) -> None:
    done = set(skip)
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) not in done:
            done.add(id(tensor))
            tensor.data = tensor.data.clone()
