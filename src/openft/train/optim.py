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
