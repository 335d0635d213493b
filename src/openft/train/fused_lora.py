"""A leaner forward for PEFT's LoRA linear layers while training on a CPU.

PEFT computes `base(x) + lora_B(lora_A(x)) * scaling`: besides the two matrix products, that is a
scalar multiply and an add over the whole (tokens x out_features) output, and the same again in the
backward pass. On a CPU those memory-bound passes cost about as much as the products themselves. Here
the LoRA term is added by one `addmm_` into the base output, scaling included, so the BLAS call does
the accumulation. Same parameters, same result; the adapter is saved by PEFT as usual.

Under bf16 autocast it also keeps less for the backward pass (openft.train.lean_layers): the frozen base
weight is cast again in backward instead of keeping a bf16 copy of it, and the base and low-rank
products of the layers that read the same input (q, k, v; gate, up) share one bf16 copy of it instead of
keeping one each.

Only the plain case is replaced (one active adapter, no dropout, no DoRA or other variant, no LoRA bias,
an `nn.Linear` base layer); every other layer keeps PEFT's forward.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from openft.train.lean_layers import SharedCast, instance_forwards, low_precision_linear
from openft.train.precision import compute_dtype

if TYPE_CHECKING:
    from peft.tuners.lora.layer import Linear as LoraLinear


@contextmanager
def fused_lora_forward(model: Any, *, enabled: bool = True) -> Iterator[int]:
    """Install the fused forward on every plain LoRA linear layer; yields how many were replaced."""
    lora_linear = _lora_linear_class() if enabled else None
    plain = [module for module in model.modules() if lora_linear and _is_plain(module, lora_linear)]
    casts = SharedCast()
    with instance_forwards([(layer, _fused_forward(layer, casts)) for layer in plain], casts) as replaced:
        yield replaced


def _lora_linear_class() -> type[LoraLinear] | None:
    """PEFT's LoRA linear layer; None when PEFT was never imported (full fine-tuning does not load it),
    in which case the model has no LoRA layer."""
    if "peft" not in sys.modules:
        return None
    from peft.tuners.lora.layer import Linear

    return Linear


def _is_plain(module: torch.nn.Module, lora_linear: type[LoraLinear]) -> bool:
    if not isinstance(module, lora_linear) or module.merged or module.disable_adapters:
        return False
    active = [name for name in module.active_adapters if name in module.lora_A]
    if len(active) != 1:
        return False
    name = active[0]
    return (
        name not in module.lora_variant
        and type(module.base_layer) is torch.nn.Linear
        and isinstance(module.lora_dropout[name], torch.nn.Identity)
        and module.lora_A[name].bias is None
        and module.lora_B[name].bias is None
    )


def _fused_forward(layer: Any, casts: SharedCast) -> Callable[..., torch.Tensor]:
    name = next(name for name in layer.active_adapters if name in layer.lora_A)
    base, lora_a, lora_b = layer.base_layer, layer.lora_A[name], layer.lora_B[name]
    scaling = layer.scaling[name]

    def forward(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        # A call this shortcut does not know, or the adapter disabled for the while (a reference
        # model's forward pass): PEFT's own forward.
        if args or kwargs or layer.disable_adapters:
            return type(layer).forward(layer, x, *args, **kwargs)
        # 2-D from the start: an in-place update of a view would make autograd copy the gradient back.
        rows = x.reshape(-1, x.shape[-1])
        dtype = compute_dtype(x)
        # Autocast to a lower precision than x's or the base weight's (which may already be stored in it:
        # openft.train.frozen_weights).
        if torch.is_grad_enabled() and (dtype != rows.dtype or dtype != base.weight.dtype):
            # x cast once (shared with the layers beside it) for both products; no weight copies kept.
            rows_low = casts(x, dtype).reshape(rows.shape)
            out = low_precision_linear(rows, rows_low, base.weight, base.bias)
            low_rank = low_precision_linear(rows, rows_low, lora_a.weight, None)
        else:
            out = F.linear(rows, base.weight, base.bias)
            low_rank = F.linear(rows, lora_a.weight)
        # out += scaling * (x A^T) B^T, in place: the base product's output is not needed for backward.
        # In-place products are not autocast: under bf16 autocast, B is cast to the output's dtype here.
        out.addmm_(low_rank, lora_b.weight.t().to(out.dtype), alpha=scaling)
        return out.view(*x.shape[:-1], out.shape[-1])

    return forward
