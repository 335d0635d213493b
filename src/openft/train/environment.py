"""The environment of a process that runs models with torch (training, evaluation), set before torch loads."""

from __future__ import annotations

import os


def set_model_process_environment() -> None:
    """Both are read once, when torch and huggingface_hub load (an explicit setting wins): OpenMP threads
    that sleep while they wait, so a busy machine does not stall the work (docs/training.md, "CPU
    threads"), and no per-file load/save progress bars in logs and terminals."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
