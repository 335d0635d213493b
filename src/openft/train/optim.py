"""AdamW with linear warmup and linear decay, over the parameters that train."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from openft.train.config import SFTConfig


def make_optimizer(model: Any, config: SFTConfig) -> torch.optim.AdamW:
    """AdamW; norms and biases (1-D tensors) get no weight decay, as usual."""
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters")
    groups = [
        {"params": [p for _, p in trainable if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for _, p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [group for group in groups if group["params"]]
    # The fused kernel updates all tensors in one pass: fewer, larger loops on CPU and GPU alike.
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(0.9, 0.999), eps=1e-8, fused=True)


def clip_gradients(optimizer: torch.optim.Optimizer, model: Any, max_norm: float) -> float:
    """The total norm of the trainable parameters' gradients; where it exceeds `max_norm`, the next
    optimizer step scales them down to it.

    The fused AdamW kernel divides each gradient by the optimizer's `grad_scale` as it reads it (the
    hook torch's GradScaler uses), so clipping costs no pass of its own over every gradient: for a full
    fine-tuning of SmolLM2 that pass reads and writes 1 GiB per step. Other optimizers get the
    gradients scaled in place, as `clip_grad_norm_` does. Same clipping coefficient as
    `clip_grad_norm_`: max_norm / (norm + 1e-6), at most 1."""
    params = [p for p in model.parameters() if p.requires_grad and p.grad is not None]
    total = torch.nn.utils.get_total_norm([p.grad for p in params])
    norm = float(total)
    coefficient = max_norm / (norm + 1e-6)
    scale = None
    if math.isfinite(norm) and coefficient < 1.0:  # a non-finite norm's step is stopped, not applied
        if optimizer.defaults.get("fused"):
            scale = torch.tensor(1.0 / coefficient, dtype=torch.float32, device=total.device)
        else:
            torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
    optimizer.grad_scale = scale  # type: ignore[attr-defined]
    return norm


def make_scheduler(optimizer: torch.optim.Optimizer, config: SFTConfig, total_steps: int) -> LambdaLR:
    """Learning rate for step s (0-based): ramps up over the warmup steps, then falls linearly.

    It reaches its lowest value, not zero, on the last step, so that step still trains.
    """
    warmup = math.ceil(config.warmup_ratio * total_steps)

    def factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / (warmup + 1)
        # max(1, ...): a run of warmup steps only (one step) also steps the scheduler once after its end.
        return max(0.0, (total_steps - s) / max(1, total_steps - warmup))

    return LambdaLR(optimizer, factor)
