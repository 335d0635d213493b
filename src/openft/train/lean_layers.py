"""Leaner forms of a decoder's RMSNorms, SwiGLU MLPs and linear layers for full fine-tuning.

What autograd keeps between a layer's forward and its backward sets the peak memory of a full
fine-tuning step. For SmolLM2-135M on a 768-token row under bf16 autocast it was 967 MiB:
- each RMSNorm kept its input and its fp32 output (103 MiB);
- autocast cast a norm's output to bf16 once per consumer, so q, k and v each kept a copy (76 MiB);
- each MLP kept gate, up, silu(gate) and the product fed to down (270 MiB);
- each linear layer kept a bf16 copy of its fp32 weight (202 MiB).
The forms here keep the norm's input and 1/rms, one bf16 copy of an input that several linear layers
share, the MLP's gate and up (silu and the product are recomputed in backward), and no weight copy
(the fp32 weight is cast again in backward). The products and their precision are the stock modules'
ones, and gradients are summed in the same dtypes, so results match them (tests/train/test_lean_layers.py).

Only what is known to compute exactly what these forms compute is replaced: the RMSNorm and
bias-free SiLU MLP classes in `LEAN_NORMS` and `LEAN_MLPS`, and plain `nn.Linear` layers whose
weight trains. Models with adapters keep their own forward.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import FunctionCtx

from openft.train.precision import compute_dtype

# Same formula in each: weight * (x * rsqrt(mean(x^2) + eps)), computed in fp32.
LEAN_NORMS = frozenset({"LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm", "Phi3RMSNorm"})
# Same formula in each: down(act(gate(x)) * up(x)).
LEAN_MLPS = frozenset({"LlamaMLP", "MistralMLP", "Qwen2MLP", "Qwen3MLP"})


@contextmanager
def lean_layers(model: Any, *, enabled: bool = True) -> Iterator[int]:
    """Install the lean forwards on a fully trained model; yields how many modules were replaced."""
    if not enabled or hasattr(model, "peft_config"):
        yield 0
        return
    casts = SharedCast()
    forwards = [(module, _lean_forward(module, casts)) for module in model.modules()]
    with instance_forwards([(m, f) for m, f in forwards if f is not None], casts) as replaced:
        yield replaced


@contextmanager
def instance_forwards(
    forwards: list[tuple[torch.nn.Module, Callable[..., torch.Tensor]]], casts: SharedCast
) -> Iterator[int]:
    """Give each module its own forward for the while (an instance attribute shadows the class's
    forward); yields how many. On exit, drops the shared cast and removes each forward that is still
    the one installed here."""
    for module, forward in forwards:
        module.forward = forward
    try:
        yield len(forwards)
    finally:
        casts.clear()
        for module, forward in forwards:
            if vars(module).get("forward") is forward:  # not if something else replaced it meanwhile
                del module.forward


def _lean_forward(module: torch.nn.Module, casts: SharedCast) -> Callable[..., torch.Tensor] | None:
    name = type(module).__name__
    if name in LEAN_NORMS and hasattr(module, "variance_epsilon"):
        return _norm_forward(module)
    if name in LEAN_MLPS and _is_plain_swiglu(module):
        return _mlp_forward(module, casts)
    if type(module) is torch.nn.Linear and module.weight.requires_grad:
        return _linear_forward(module, casts)
    return None


def _is_plain_swiglu(mlp: Any) -> bool:
    projections = [getattr(mlp, name, None) for name in ("gate_proj", "up_proj", "down_proj")]
    act = getattr(mlp, "act_fn", None)
    return all(type(p) is torch.nn.Linear and p.bias is None for p in projections) and (
        isinstance(act, torch.nn.SiLU) or type(act).__name__ == "SiLUActivation"
    )


class SharedCast:
    """The last activation cast for a matrix product, and its cast: q, k and v (or gate and up) read
    the same input, and keeping one bf16 copy for their backward instead of one each saves memory."""

    def __init__(self) -> None:
        self._source: weakref.ref[torch.Tensor] | None = None
        self._version = -1
        self._cast: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if x.dtype == dtype:
            return x
        cast = self._cast
        if (
            cast is not None
            and cast.dtype == dtype
            and self._source is not None
            and self._source() is x
            and x._version == self._version
        ):
            return cast
        cast = x.detach().to(dtype)
        self._source, self._version, self._cast = weakref.ref(x), x._version, cast
        return cast

    def clear(self) -> None:
        self._source, self._cast = None, None


# RMSNorm


def _norm_forward(norm: Any) -> Callable[..., torch.Tensor]:
    stock = type(norm).forward

    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or norm.weight.dtype != torch.float32:
            return stock(norm, x)  # a bf16 input (Qwen3's q/k norms under autocast): the stock path
        return _RMSNorm.apply(x, norm.weight, norm.variance_epsilon)

    return forward


class _RMSNorm(torch.autograd.Function):
    """weight * x / rms(x) in fp32, keeping x and 1/rms for backward (not the normalized x)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:  # type: ignore[override]
        with torch.autocast(x.device.type, enabled=False):
            rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
            out = weight * (x * rstd)
        ctx.save_for_backward(x, weight, rstd)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, weight, rstd = ctx.saved_tensors
        normed = x * rstd
        grad_weight = None
        if ctx.needs_input_grad[1]:
            grad_weight = (grad_out * normed).reshape(-1, normed.shape[-1]).sum(0)
        grad_normed = grad_out * weight
        # d(x * rstd)/dx applied to grad_normed: rstd * (g - normed * mean(g * normed))
        grad_x = rstd * (grad_normed - normed * (grad_normed * normed).mean(-1, keepdim=True))
        return grad_x, grad_weight, None


# Linear


def _linear_forward(linear: torch.nn.Linear, casts: SharedCast) -> Callable[..., torch.Tensor]:
    def forward(x: torch.Tensor) -> torch.Tensor:
        dtype = compute_dtype(x)
        if dtype == linear.weight.dtype or not torch.is_grad_enabled():
            return F.linear(x, linear.weight, linear.bias)  # no weight copy to spare
        return low_precision_linear(x, casts(x, dtype), linear.weight, linear.bias)

    return forward


def low_precision_linear(
    x: torch.Tensor, x_low: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """x W^T + b computed from `x_low` (x cast to the low precision), keeping the fp32 `weight` rather
    than a low-precision copy of it for backward; the input gradient is returned in x's dtype."""
    return _Linear.apply(x, x_low, weight, bias)


class _Linear(torch.autograd.Function):
    """x W^T + b in the low precision, keeping the low-precision x and the fp32 W (cast again in
    backward) rather than a low-precision copy of W."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        x: torch.Tensor,
        x_low: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        dtype = x_low.dtype
        with torch.autocast(x.device.type, enabled=False):
            out = F.linear(x_low, weight.to(dtype), None if bias is None else bias.to(dtype))
        ctx.save_for_backward(x_low, weight)
        ctx.x_dtype, ctx.has_bias = x.dtype, bias is not None  # type: ignore[attr-defined]
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x_low, weight = ctx.saved_tensors
        grad_rows = grad_out.reshape(-1, grad_out.shape[-1])
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad_out @ weight.to(x_low.dtype)).to(ctx.x_dtype)
        if ctx.needs_input_grad[2]:
            grad_weight = (grad_rows.t() @ x_low.reshape(-1, x_low.shape[-1])).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_bias = grad_rows.sum(0).to(weight.dtype)
        return grad_x, None, grad_weight, grad_bias


# SwiGLU MLP


def _mlp_forward(mlp: Any, casts: SharedCast) -> Callable[..., torch.Tensor]:
    stock = type(mlp).forward
    weights = (mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight)

    def forward(x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return stock(mlp, x)
        dtype = compute_dtype(x)
        return _SwiGLU.apply(x, casts(x, dtype), *weights)

    return forward


class _SwiGLU(torch.autograd.Function):
    """down(silu(gate(x)) * up(x)), keeping x, gate(x) and up(x) for backward: silu and the product
    are recomputed there (two cheap elementwise passes instead of two more saved tensors)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        x: torch.Tensor,
        x_low: torch.Tensor,
        w_gate: torch.Tensor,
        w_up: torch.Tensor,
        w_down: torch.Tensor,
    ) -> torch.Tensor:
        dtype = x_low.dtype
        with torch.autocast(x.device.type, enabled=False):
            gate = F.linear(x_low, w_gate.to(dtype))
            up = F.linear(x_low, w_up.to(dtype))
            out = F.linear(F.silu(gate) * up, w_down.to(dtype))
        ctx.save_for_backward(x_low, gate, up, w_gate, w_up, w_down)
        ctx.x_dtype = x.dtype  # type: ignore[attr-defined]
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x_low, gate, up, w_gate, w_up, w_down = ctx.saved_tensors
        dtype = x_low.dtype
        with torch.autocast(grad_out.device.type, enabled=False):
            activated = F.silu(gate)
            hidden = activated * up
            grad_rows = grad_out.reshape(-1, grad_out.shape[-1])
            grad_w_down = grad_rows.t() @ hidden.reshape(-1, hidden.shape[-1])
            del hidden
            grad_hidden = grad_out @ w_down.to(dtype)
            grad_up = grad_hidden * activated
            del activated
            grad_gate = torch.ops.aten.silu_backward(grad_hidden * up, gate)
            del grad_hidden
            x_rows = x_low.reshape(-1, x_low.shape[-1])
            grad_gate_rows = grad_gate.reshape(-1, grad_gate.shape[-1])
            grad_up_rows = grad_up.reshape(-1, grad_up.shape[-1])
            grad_w_gate = grad_gate_rows.t() @ x_rows
            grad_w_up = grad_up_rows.t() @ x_rows
            # Each product's input gradient is brought to x's dtype before the sum, as autograd does
            # when the two linear layers each cast x themselves.
            grad_x = (grad_gate @ w_gate.to(dtype)).to(ctx.x_dtype)
            grad_x += (grad_up @ w_up.to(dtype)).to(ctx.x_dtype)
        fp32 = w_gate.dtype
        return grad_x, None, grad_w_gate.to(fp32), grad_w_up.to(fp32), grad_w_down.to(fp32)
