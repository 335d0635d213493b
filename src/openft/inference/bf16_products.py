"""bf16 matrix products for a float32 model, on CPUs that multiply bf16 in hardware.

A model's linear layers keep their weights in bf16 and multiply in bf16; everything else stays float32:
the activations between layers, the norms, attention and its KV cache, and the output head, so logits
and logprobs keep float32 resolution (a bf16 logit near 25 moves in steps of 0.125, which turns close
candidates into ties). Training on these CPUs multiplies in bf16 too (openft.train.precision).

Why: decoding reads every weight once per step. In bf16 that is half the bytes, and oneDNN's bf16
kernels keep several rows' products nearly as cheap as one, where float32's cost grows with the rows
(measured on SmolLM2-135M, one thread on an AVX512-BF16 CPU: a step of 8 rows 1.8x one row in float32,
about 1.3x in bf16; docs/inference.md).

oneDNN builds and keeps a kernel (about half a MB) for every matrix shape it meets. Prompts of every
length would pile them up, so a product's rows are zero-padded to a bucket: a power of two up to
`SMALL_ROWS` (decoding steps), then steps of 1.5x or 2x (prefills). The padding rows are sliced off.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

SMALL_ROWS = 32


@cache
def row_bucket(rows: int) -> int:
    """The padded row count: the smallest power of two, or 1.5 times a power of two above SMALL_ROWS,
    that holds `rows`."""
    bucket = 1
    while bucket < rows:
        if bucket >= SMALL_ROWS and bucket + bucket // 2 >= rows:
            return bucket + bucket // 2
        bucket *= 2
    return bucket


def bf16_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`F.linear(x, weight, bias)` for float32 `x` and a bf16 `weight`, multiplied in bf16, in x's dtype."""
    rows = x.reshape(-1, x.shape[-1])
    n = rows.shape[0]
    padded = row_bucket(n)
    if padded != n:
        rows = F.pad(rows, (0, 0, 0, padded - n))
    out = F.linear(rows.to(weight.dtype), weight)[:n].to(x.dtype)
    if bias is not None:
        out += bias
    return out.view(*x.shape[:-1], weight.shape[0])


class Bf16Linear(nn.Linear):
    """An `nn.Linear` whose weight is bf16 and whose input and output keep their own dtype."""

    def __init__(self, layer: nn.Linear) -> None:
        nn.Module.__init__(self)  # not nn.Linear's: it would allocate a fresh weight
        self.in_features, self.out_features = layer.in_features, layer.out_features
        self.weight = nn.Parameter(layer.weight.detach().to(torch.bfloat16), requires_grad=False)
        self.bias = layer.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bf16_linear(x, self.weight, self.bias)


def use_bf16_products(model: nn.Module) -> int:
    """Make every linear layer of `model` but its output head a `Bf16Linear`; returns how many.

    The head keeps its float32 weight (tied to the input embedding in many models, which then stays
    float32 too)."""
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    converted = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear and child is not head:
                setattr(parent, name, Bf16Linear(child))
                converted += 1
    # The weights kept may be views of the checkpoint file, mapped into memory whole; copies of their own
    # let it be unmapped, or every page of the float32 weights converted above would stay resident.
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.dtype != torch.bfloat16:
                tensor.data = tensor.data.clone()
    return converted
