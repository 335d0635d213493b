"""Cross-entropy through the output layer, a chunk of trained positions at a time.

With a large vocabulary (49,152 for SmolLM2) the logits are the largest tensors of a training step:
N trained positions x V floats, kept for the backward pass together with the softmax and the gradient
of the logits. Here the output layer and the cross-entropy run on `chunk_size` positions at a time, and
each chunk's gradients (with respect to the hidden states, and to the output weight when it trains)
are computed right away, while its logits exist, so at most one chunk's logits are ever alive and the
backward pass only scales the stored gradients. The sum of the chunks' losses, and its gradients, are
those of the whole computation: the same products in the same precision (under autocast, the output
layer multiplies in the autocast dtype and the cross-entropy runs in fp32, as `Linear` + `.float()`
do); only the output weight's gradient is summed over chunks in fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from openft.train.packing import IGNORED_TARGET
from openft.train.precision import compute_dtype

DEFAULT_CHUNK_SIZE = 1024  # a multiple of the bf16 row multiple, so chunk shapes repeat


def chunked_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of cross-entropies, number of argmax hits) of `hidden` (N, H) through the output layer.

    Targets equal to IGNORED_TARGET add no loss, no gradient and no hit.
    """
    dtype = compute_dtype(hidden)
    needs_grad = torch.is_grad_enabled() and (
        hidden.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    )
    if not needs_grad:
        with torch.no_grad():
            loss_sum, n_correct, _, _, _ = _chunks(
                hidden, weight, bias, targets, chunk_size, dtype, grads=None
            )
        return loss_sum, n_correct
    loss_sum, n_correct = _ChunkedCrossEntropy.apply(hidden, weight, bias, targets, chunk_size, dtype)
    return loss_sum, n_correct


class _ChunkedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        targets: torch.Tensor,
        chunk_size: int,
        dtype: torch.dtype,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        needs = ctx.needs_input_grad  # type: ignore[attr-defined]
        grads = (needs[0], needs[1], bias is not None and needs[2])
        loss_sum, n_correct, grad_hidden, grad_weight, grad_bias = _chunks(
            hidden, weight, bias, targets, chunk_size, dtype, grads=grads
        )
        ctx.grads = (grad_hidden, grad_weight, grad_bias)  # type: ignore[attr-defined]
        ctx.mark_non_differentiable(n_correct)
        return loss_sum, n_correct

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad_loss: torch.Tensor, _grad_correct: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        grad_hidden, grad_weight, grad_bias = ctx.grads  # type: ignore[attr-defined]
        del ctx.grads  # type: ignore[attr-defined]
        # In place: these tensors are this backward's alone (a second backward finds none).
        for grad in (grad_hidden, grad_weight, grad_bias):
            if grad is not None:
                grad.mul_(grad_loss.to(grad.dtype))
        return grad_hidden, grad_weight, grad_bias, None, None, None


def _chunks(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    chunk_size: int,
    dtype: torch.dtype,
    *,
    grads: tuple[bool, bool, bool] | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Loss sum and hits over all chunks; with `grads` (hidden, weight, bias), also those gradients."""
    want_hidden, want_weight, want_bias = grads or (False, False, False)
    with torch.autocast(hidden.device.type, enabled=False):
        weight_c = weight.to(dtype)
        bias_c = None if bias is None else bias.to(dtype)
        loss_sum = torch.zeros((), dtype=torch.float32, device=hidden.device)
        n_correct = torch.zeros((), dtype=torch.long, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if want_hidden else None
        # Summed in fp32 over chunks; the first chunk's product becomes the sum (no zero-filled buffer).
        grad_weight: torch.Tensor | None = None
        grad_bias: torch.Tensor | None = None
        for start in range(0, hidden.shape[0], chunk_size):
            rows = slice(start, start + chunk_size)
            hidden_c = hidden[rows].to(dtype)
            target_c = targets[rows]
            logits = F.linear(hidden_c, weight_c, bias_c).float()
            n_correct += (logits.argmax(dim=-1) == target_c).sum()
            log_probs = torch.log_softmax(logits, dim=-1)
            del logits
            trained = target_c != IGNORED_TARGET
            safe_target = torch.where(trained, target_c, 0)
            picked = log_probs.gather(1, safe_target[:, None]).squeeze(1)
            loss_sum -= (picked * trained).sum()
            if not grads:
                continue
            # d(-log p_t)/d logits = softmax - one_hot(t); zero on rows without a target.
            grad_logits = log_probs.exp_()
            grad_logits.scatter_add_(1, safe_target[:, None], torch.full_like(picked[:, None], -1.0))
            grad_logits.mul_(trained[:, None])
            grad_logits_c = grad_logits.to(dtype)
            del grad_logits
            if grad_hidden is not None:
                grad_hidden[rows] = (grad_logits_c @ weight_c).to(hidden.dtype)
            if want_weight:
                part = (grad_logits_c.T @ hidden_c).float()
                grad_weight = part if grad_weight is None else grad_weight.add_(part)
                del part
            if want_bias:
                part = grad_logits_c.sum(dim=0).float()
                grad_bias = part if grad_bias is None else grad_bias.add_(part)
    if want_weight and grad_weight is None:  # no trained positions
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
    if want_bias and grad_bias is None:
        grad_bias = torch.zeros(weight.shape[0], dtype=torch.float32, device=weight.device)
    return (
        loss_sum,
        n_correct,
        grad_hidden,
        None if grad_weight is None else grad_weight.to(weight.dtype),
        None if grad_bias is None or bias is None else grad_bias.to(bias.dtype),
    )
