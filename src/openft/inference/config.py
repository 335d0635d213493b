"""The built-in engine's settings, resolved to concrete values (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from openft.train.environment import usable_cores

MIB = 1024 * 1024


@dataclass(frozen=True)
class EngineConfig:
    # "auto": the first CUDA device if there is one, else the CPU. Or "cpu", "cuda", "cuda:1", "mps".
    device: str = "auto"
    # "auto": bfloat16 on a GPU that has it (float16 otherwise), float32 on the CPU.
    dtype: str = "auto"
    # Whole models (bases and full fine-tunes) kept loaded; the least recently used one goes first.
    max_loaded_models: int = 2
    # LoRA adapters kept loaded, by the size of their weights; the least recently used go first.
    adapter_cache_bytes: int = 1024 * MIB
    # Sequences (choices) generated together in one batch.
    max_batch_sequences: int = 32
    # KV-cache positions one batch may need (prompt + max_tokens of each sequence): bounds its memory.
    max_batch_tokens: int = 65536
    # CPU threads for generation; None: shared_cpu_threads() (half the cores).
    cpu_threads: int | None = None
    # A request stops generating (finish_reason "length") this many seconds after it started; 0: never.
    max_request_s: float = 120.0
    # How long the scheduler waits for more requests to join a batch that is about to start.
    batch_wait_s: float = 0.005


def shared_cpu_threads() -> int:
    """Torch threads for a model process that shares the machine: half the cores it may use, at least one.

    The server's engine shares its cores with the worker's training job, its spare recipe process and the
    end-of-job evaluation. Torch's default (one thread per core) oversubscribes them as soon as any of
    those runs, and threads that wait on each other for a core that is taken made decoding 10x slower
    (1.1 s a token on 2 busy cores, against 0.09 s with one thread). Decoding small models gains little
    from more threads anyway, so half is a cheap insurance on an idle machine (docs/inference.md).
    """
    return max(1, len(usable_cores()) // 2)
