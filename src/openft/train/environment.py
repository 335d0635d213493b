"""The environment of a process that runs models with torch (training, evaluation), set before torch loads."""

from __future__ import annotations

import os


def set_model_process_environment() -> None:
    """Read once, when torch and huggingface_hub load (an explicit setting wins): OpenMP threads that
    sleep while they wait, so a busy machine does not stall the work (docs/training.md, "CPU threads");
    transparent huge pages for torch's CPU tensors of 2 MiB and more, so that a new large tensor (a
    vocabulary-sized gradient, the optimizer's moments) costs one page fault per 2 MiB instead of one per
    4 KiB (docs/training.md, "Huge pages"); and no per-file load/save progress bars in logs and
    terminals."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
