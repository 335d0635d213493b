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

A `LossWorkspace` keeps a chunk's logits buffers from one call to the next (and a frozen output
weight's cast to the product dtype): a new tensor of a vocabulary-sized chunk costs a page fault per
page at every step (measured on a CPU: about 20 ms per 88 MB, more than the softmax that fills it).
"""

from __future__ import annotations

import torch

from openft.train.packing import IGNORED_TARGET
from openft.train.precision import compute_dtype

# A multiple of the bf16 row multiple, so chunk shapes repeat; 256 x 49,152 logits are 50 MB in fp32.
DEFAULT_CHUNK_SIZE = 256


class LossWorkspace:
    """What the chunked loss keeps between calls (one per training run): the buffers a chunk's logits
    and their gradient live in, grown to the largest chunk met, and the output weight cast to the
    product dtype while the weight is frozen and unchanged (a LoRA run's, cast once, not at every step)."""

    def __init__(self) -> None:
        self._logits: torch.Tensor | None = None  # fp32
        self._product: torch.Tensor | None = None  # the product dtype, where it is not fp32
        self._cast: tuple[torch.Tensor, int, torch.Tensor] | None = None  # (weight, its version, cast)

    def buffers(
        self, rows: int, vocab: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(fp32 logits, the product's own buffer or None where the product is fp32), `rows` long."""
        self._logits = _fitting(self._logits, rows, vocab, torch.float32, device)
        if dtype == torch.float32:
            self._product = None
            return self._logits[:rows], None
        self._product = _fitting(self._product, rows, vocab, dtype, device)
        return self._logits[:rows], self._product[:rows]

    def cast(self, weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if weight.dtype == dtype:
            return weight
        if weight.requires_grad:  # it changes at every step: cast it each time, keep nothing
            self._cast = None
            return weight.to(dtype)
        kept = self._cast
        if kept is None or kept[0] is not weight or kept[1] != weight._version or kept[2].dtype != dtype:
            kept = self._cast = (weight, weight._version, weight.to(dtype))
        return kept[2]


def _fitting(
    buffer: torch.Tensor | None, rows: int, vocab: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    if (
        buffer is not None
        and buffer.shape[0] >= rows
        and buffer.shape[1] == vocab
        and buffer.dtype == dtype
        and buffer.device == device
    ):
        return buffer
    return torch.empty((rows, vocab), dtype=dtype, device=device)


def chunked_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workspace: LossWorkspace | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of cross-entropies, number of argmax hits) of `hidden` (N, H) through the output layer.

    Targets equal to IGNORED_TARGET add no loss, no gradient and no hit. Without a `workspace`, one
    for this call alone.
    """
    workspace = workspace or LossWorkspace()
    dtype = compute_dtype(hidden)
    needs_grad = torch.is_grad_enabled() and (
        hidden.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    )
    if not needs_grad:
        with torch.no_grad():
            loss_sum, n_correct, _, _, _ = _chunks(
                hidden, weight, bias, targets, chunk_size, dtype, workspace, grads=None
            )
        return loss_sum, n_correct
    loss_sum, n_correct = _ChunkedCrossEntropy.apply(
        hidden, weight, bias, targets, chunk_size, dtype, workspace
    )
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
        workspace: LossWorkspace,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        needs = ctx.needs_input_grad  # type: ignore[attr-defined]
        grads = (needs[0], needs[1], bias is not None and needs[2])
        loss_sum, n_correct, grad_hidden, grad_weight, grad_bias = _chunks(
            hidden, weight, bias, targets, chunk_size, dtype, workspace, grads=grads
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
        return grad_hidden, grad_weight, grad_bias, None, None, None, None


def _chunks(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    chunk_size: int,
    dtype: torch.dtype,
    workspace: LossWorkspace,
    *,
    grads: tuple[bool, bool, bool] | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Loss sum and hits over all chunks; with `grads` (hidden, weight, bias), also those gradients."""
    want_hidden, want_weight, want_bias = grads or (False, False, False)
    with torch.autocast(hidden.device.type, enabled=False):
        weight_c = workspace.cast(weight, dtype)
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
            logits, product = workspace.buffers(hidden_c.shape[0], weight.shape[0], dtype, hidden.device)
            _linear(hidden_c, weight_c, bias_c, out=logits if product is None else product)
            if product is not None:
                logits.copy_(product)  # exact: widening
            n_correct += (logits.argmax(dim=-1) == target_c).sum()
            trained = target_c != IGNORED_TARGET
            safe_target = torch.where(trained, target_c, 0)
            # In place, in the buffer: logits - max, their exp, the softmax (log-sum-exp on the way).
            logits.sub_(logits.amax(dim=-1, keepdim=True))
            picked = logits.gather(1, safe_target[:, None]).squeeze(1)
            total = logits.exp_().sum(dim=-1)
            loss_sum += ((total.log() - picked) * trained).sum()
            if not grads:
                continue
            # d(-log p_t)/d logits = softmax - one_hot(t), rounded once to the product dtype; zero on
            # rows without a target.
            probs = logits.mul_(total.reciprocal()[:, None])
            target_grad = probs.gather(1, safe_target[:, None]).squeeze(1) - 1.0
            grad_logits_c = probs if product is None else product.copy_(probs)
            # (index_put_, not scatter_: a bf16 scatter_ on a CPU passes over the whole tensor)
            row_ids = torch.arange(len(safe_target), device=hidden.device)
            grad_logits_c.index_put_((row_ids, safe_target), target_grad.to(dtype))
            untrained = (~trained).nonzero().squeeze(1)
            if untrained.numel():
                grad_logits_c.index_fill_(0, untrained, 0.0)
            if grad_hidden is not None:
                grad_hidden[rows] = (grad_logits_c @ weight_c).to(hidden.dtype)
            if want_weight:
                part = grad_logits_c.T @ hidden_c  # added to the fp32 sum as it is read, not widened first
                grad_weight = part.float() if grad_weight is None else grad_weight.add_(part)
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


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, out: torch.Tensor) -> None:
    if bias is None:
        torch.mm(x, weight.T, out=out)
    else:
        torch.addmm(bias, x, weight.T, out=out)
