"""Training precision: fp32 weights, with bf16 matrix products where the hardware does them fast.

(The one exception: a LoRA run in bf16 on a CPU stores its frozen base weights in bf16, the values its
products would cast them to; openft.train.frozen_weights.)

`"auto"` picks bf16 mixed precision (autocast; weights, gradients and optimizer state stay fp32) on GPUs
with bf16 support and on CPUs with native bf16 instructions (AVX512-BF16 or AMX; e.g. AMD Zen 4 and
Intel Sapphire Rapids and later), where a bf16 matrix product runs several times faster than an fp32
one. Other CPUs emulate bf16 and are faster in fp32, so `"auto"` means fp32 there.

On a CPU, two things keep bf16 training lean (both measured, see docs/training.md):
- oneDNN builds and keeps a kernel for every matrix shape it meets. Packed rows have a different length
  at every step, so kernels would pile up (hundreds of MB within a few dozen steps). A training process
  keeps only the last few dozen (openft.train.environment), and rows are padded to a multiple of
  `CPU_BF16_ROW_MULTIPLE` tokens with a separate, loss-free segment, so that the lengths repeat and
  the rows stay aligned for the kernels.
- Attention runs in fp32: its bf16 CPU kernel keeps a kernel per sequence length as well, and the
  attention products are a small share of the work at these lengths.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import cache
from pathlib import Path
from typing import Any, Literal

import torch

Precision = Literal["bf16", "fp32"]
CPU_BF16_ROW_MULTIPLE = 16

Autocast = Callable[[], AbstractContextManager[Any]]


def resolve_precision(requested: str, device: torch.device, *, packed: bool = True) -> Precision:
    """The precision to train in: "auto" becomes what is fast on `device`; "bf16" and "fp32" are kept.

    On a CPU, "auto" picks bf16 only for a model that trains on packed rows: one that cannot pack trains
    example by example on rows of every length, which bf16 kernels would pile up for (padding each
    example instead would cost more than bf16 gains).
    """
    if requested == "fp32":
        return "fp32"
    if requested == "bf16":
        return "bf16"
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() and packed else "fp32"
    return "fp32"


@cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (not by conversion to fp32)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no cheap way to tell, so stay with fp32
        return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            break
    return bool(flags & {"avx512_bf16", "amx_bf16"}) and torch.backends.mkldnn.is_available()


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype matrix products on `x` run in: autocast's where it is on for x's device, else x's own."""
    device = x.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype


def autocast_for(device: torch.device, precision: Precision) -> Autocast:
    if precision == "bf16" and device.type in ("cuda", "cpu"):
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext


def row_multiple_for(device: torch.device, precision: Precision, *, packed: bool = True) -> int:
    """Pad packed rows (and their trained positions) to a multiple of this many tokens (1: no padding).
    Only packed rows in bf16 on a CPU are padded."""
    return CPU_BF16_ROW_MULTIPLE if precision == "bf16" and device.type == "cpu" and packed else 1
