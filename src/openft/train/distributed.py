"""One process or several under torchrun: the same recipe, told apart only by rank and world size.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them the run is a world of one and nothing
here touches torch.distributed. On CPU the processes talk over gloo and share the machine's cores.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from openft.train.environment import usable_cores


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def all_sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums over all processes (float64, so token counts stay exact)."""
        if not self.is_distributed:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._collective_device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def broadcast_word(self, word: str, choices: Sequence[str]) -> str:
        """Rank 0's choice among `choices`, on every rank (each rank passes its own, rank 0's wins)."""
        if not self.is_distributed:
            return word
        tensor = torch.tensor([choices.index(word)], dtype=torch.long, device=self._collective_device)
        dist.broadcast(tensor, src=0)
        return choices[int(tensor.item())]

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    @property
    def _collective_device(self) -> torch.device:
        # gloo reduces CPU tensors; nccl needs them on the process's GPU.
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def init_distributed() -> DistContext:
    """Join the process group when launched by torchrun; pick this process's device and CPU threads."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        _share_cpu_threads(local_world_size)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world_size, local_rank, local_world_size, device)


def close_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _share_cpu_threads(local_world_size: int) -> None:
    """Give each local process an equal share of the cores this process may use.

    Without this every process starts one thread per core and they fight over the same cores; an
    explicit OMP_NUM_THREADS from the user wins.
    """
    if "OMP_NUM_THREADS" in os.environ:
        return
    torch.set_num_threads(max(1, len(usable_cores()) // max(1, local_world_size)))
