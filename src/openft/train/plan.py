"""Which examples each step trains on, and how a step's examples are split into work units.

A step is one batch of `batch_size` examples, as OpenAI counts it, so steps per epoch are
ceil(examples / batch_size) and every example is seen once per epoch. The order is a seeded shuffle per
epoch, recomputed rather than stored: a resumed run only needs the step number to know where it is.
How a step's examples are then laid out (split across processes, packed into micro-batches) changes
the arithmetic's grouping only, never which examples a step sees. Nothing here imports torch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    n_examples: int
    batch_size: int
    n_epochs: int
    seed: int

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n_examples / self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.n_epochs

    def epoch_of(self, step: int) -> int:
        """The 1-based epoch that `step` (1-based) belongs to."""
        return (step - 1) // self.steps_per_epoch + 1

    def is_epoch_end(self, step: int) -> bool:
        return step % self.steps_per_epoch == 0

    def examples_of(self, step: int) -> list[int]:
        """Indices of the training examples of `step`."""
        epoch = self.epoch_of(step)
        start = (step - 1 - (epoch - 1) * self.steps_per_epoch) * self.batch_size
        return epoch_order(self.n_examples, self.seed, epoch)[start : start + self.batch_size]


def epoch_order(n_examples: int, seed: int, epoch: int) -> list[int]:
    """A shuffle of range(n_examples) that depends only on the seed and the epoch."""
    order = list(range(n_examples))
    random.Random(f"openft-sft:{seed}:{epoch}").shuffle(order)
    return order


def split_across_ranks(indices: Sequence[int], lengths: Sequence[int], world_size: int) -> list[list[int]]:
    """Deal one step's examples to `world_size` processes with about equal token counts.

    Longest first, each to the least-loaded rank: every process then does about the same work, and the
    union of the shares is exactly the step's examples. A share can be empty when the step holds
    fewer examples than there are processes.
    """
    shares: list[list[int]] = [[] for _ in range(world_size)]
    loads = [0] * world_size
    for index in sorted(indices, key=lambda i: (-lengths[i], i)):
        rank = loads.index(min(loads))
        shares[rank].append(index)
        loads[rank] += lengths[index]
    position = {index: i for i, index in enumerate(indices)}
    return [sorted(share, key=position.__getitem__) for share in shares]


def rotating_slice(n_items: int, size: int, round_index: int) -> list[int]:
    """The `round_index`-th window of `size` indices over range(n_items), wrapping around.

    Successive validation batches move through the whole validation file instead of reusing its head.
    """
    size = min(size, n_items)
    start = (round_index * size) % n_items
    return [(start + offset) % n_items for offset in range(size)]
