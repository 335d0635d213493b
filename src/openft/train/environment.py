"""The environment of a process that runs models with torch (training, evaluation), set before torch loads."""

from __future__ import annotations

import functools
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path

# How long an OpenMP thread of a training process spins before it sleeps (libgomp's busy-wait loops):
# long enough to bridge the gaps between a step's short parallel operations, short enough that a
# thread waiting for a contested core soon gives it up (docs/training.md, "CPU threads").
TRAINING_SPIN_COUNT = "10000"

# oneDNN builds a kernel for every matrix shape its bf16 products meet (about 0.6 MB each) and keeps up
# to 1,024 of them in each of two caches, oneDNN's and ideep's. A training run meets a new row length at
# most steps, so a training process keeps the last 64: a few steps' shapes, and building one again
# takes under a millisecond (docs/training.md, "Precision").
TRAINING_KERNEL_CACHE_CAPACITY = "64"
KERNEL_CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")

JEMALLOC = "libjemalloc.so.2"
# Where Linux distributions install shared libraries: Debian's multiarch directories for this machine's
# architecture (never another's: the loader would refuse it), then the usual ones.
LIBRARY_DIRS = (
    f"/usr/lib/{platform.machine()}-linux-gnu",
    f"/lib/{platform.machine()}-linux-gnu",
    "/usr/lib64",
    "/lib64",
    "/usr/local/lib",
    "/usr/lib",
)


def set_model_process_environment(*, training: bool = False) -> None:
    """Read once, when torch and huggingface_hub load (an explicit setting wins): OpenMP threads that
    sleep while they wait, so a busy machine does not stall the work, and in a training process that
    spin briefly first (openft.train.core_share keeps them off cores other processes use); transparent
    huge pages for torch's CPU tensors of 2 MiB and more, so that a new large tensor (a vocabulary-sized
    gradient, the optimizer's moments) costs one page fault per 2 MiB instead of one per 4 KiB
    (docs/training.md, "Huge pages"); in a training process, small caches of bf16 kernels; and no
    per-file load/save progress bars in logs and terminals."""
    if training and "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", TRAINING_SPIN_COUNT)
    if training:
        for name in KERNEL_CACHE_VARIABLES:
            os.environ.setdefault(name, TRAINING_KERNEL_CACHE_CAPACITY)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def usable_cores() -> list[int]:
    """The CPU cores this process may run on (its affinity where the OS tells it, else all of them)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def training_process_environment(allocator: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment to start a training process with: `base` (this process's environment by
    default), with jemalloc preloaded when `allocator` (the train_allocator setting) is "auto" and the
    system has it.

    A training step frees and allocates tensors of many sizes; the C library's allocator keeps much of
    what was freed in pieces too small to reuse, so a run's peak memory grows with them, and jemalloc
    keeps far less (docs/training.md, "Memory allocator"). It must be there when the process starts,
    so the parent chooses it. A preload already set (jemalloc, tcmalloc, anything) is left as it is."""
    env = dict(os.environ if base is None else base)
    library = jemalloc_library() if allocator == "auto" else None
    if library is not None and not env.get("LD_PRELOAD"):
        env["LD_PRELOAD"] = str(library)
    return env


@functools.cache
def jemalloc_library() -> Path | None:
    """jemalloc's shared library where the system has one installed (Linux only), else None."""
    if not sys.platform.startswith("linux"):
        return None
    return next((path for path in (Path(d) / JEMALLOC for d in LIBRARY_DIRS) if path.is_file()), None)


def preloaded_allocator() -> str | None:
    """The allocator this process was started on, "jemalloc" or "tcmalloc" (Linux), else None."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    return next((name for name in ("jemalloc", "tcmalloc") if f"lib{name}" in maps), None)
