"""The environment of a process that runs models with torch (training, evaluation), set before torch loads."""

from __future__ import annotations

import os

# How long an OpenMP thread of a training process spins before it sleeps (libgomp's busy-wait loops):
# long enough to bridge the gaps between a step's short parallel operations, short enough that a
# thread waiting for a contested core soon gives it up (docs/training.md, "CPU threads").
TRAINING_SPIN_COUNT = "10000"


def set_model_process_environment(*, training: bool = False) -> None:
    """Read once, when torch and huggingface_hub load (an explicit setting wins): OpenMP threads that
    sleep while they wait, so a busy machine does not stall the work, and in a training process that
    spin briefly first (openft.train.core_share keeps them off cores other processes use); transparent
    huge pages for torch's CPU tensors of 2 MiB and more, so that a new large tensor (a vocabulary-sized
    gradient, the optimizer's moments) costs one page fault per 2 MiB instead of one per 4 KiB
    (docs/training.md, "Huge pages"); and no per-file load/save progress bars in logs and terminals."""
    if training and "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", TRAINING_SPIN_COUNT)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def usable_cores() -> list[int]:
    """The CPU cores this process may run on (its affinity where the OS tells it, else all of them)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))
