"""A CPU run's torch threads, following the cores that other processes leave free.

A training process waits briefly (spins) before it sleeps between two parallel pieces of work
(`GOMP_SPINCOUNT`, openft.train.environment): on cores of its own that makes a step about 40 % faster
than threads that sleep at once, since a step is thousands of short parallel operations and waking a
sleeping thread costs more than many of them. But a thread that spins for a core another process
needs made steps three times slower. So between steps the run measures how much of its cores other
processes used (Linux's /proc/stat, less this process's own CPU time) and keeps one thread fewer per
core they took: alone it uses them all; beside a busy inference engine or another job on a 2-core
machine it trains on one thread, which never waits on another. Measured in docs/training.md
("CPU threads").
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from openft.train.environment import usable_cores

# Other processes' use of our cores below this many cores (an API server answering, a worker polling
# its queue) leaves every thread in place.
TOLERATED_CORES = 0.25
# Shorter intervals are not measured: /proc/stat counts in ticks of 10 ms.
MIN_INTERVAL_S = 0.5

PROC_STAT = "/proc/stat"


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic seconds
    busy_s: float  # CPU seconds all processes spent on our cores
    own_s: float  # CPU seconds this process spent


def read_busy_seconds(cores: Iterable[int], stat_text: str) -> float:
    """CPU seconds the cores `cores` spent busy (anything but idle and waiting for I/O), from the text
    of /proc/stat; time a hypervisor gave to another machine (steal) counts as busy."""
    wanted = {f"cpu{core}" for core in cores}
    ticks = 0
    for line in stat_text.splitlines():
        name, _, rest = line.partition(" ")
        if name in wanted:
            fields = [int(value) for value in rest.split()]
            # user nice system idle iowait irq softirq steal (guest time is already in user and nice)
            ticks += sum(fields[:3]) + sum(fields[5:8])
    return ticks / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _read_proc_stat() -> str:
    with open(PROC_STAT) as stat:
        return stat.read()


class CoreShare:
    """Between steps, `rebalance()` sets torch's threads to this run's cores less those other processes
    used since the last call (at least one thread); `restore()` gives the process its threads back when
    the run ends (another run, or a test, may follow in the same process)."""

    def __init__(
        self,
        cores: list[int],
        full_threads: int,
        *,
        read_stat: Callable[[], str] = _read_proc_stat,
        own_cpu_seconds: Callable[[], float] = _own_cpu_seconds,
        clock: Callable[[], float] = time.monotonic,
        set_threads: Callable[[int], None] = torch.set_num_threads,
    ) -> None:
        self.cores = cores
        self.full_threads = full_threads
        self.threads = full_threads
        self._read_stat = read_stat
        self._own = own_cpu_seconds
        self._clock = clock
        self._set_threads = set_threads
        self._last = self._sample()

    @classmethod
    def for_this_process(cls, device: torch.device, local_world_size: int) -> CoreShare | None:
        """A CoreShare for a lone CPU training process on Linux; None where the threads are the user's
        (OMP_NUM_THREADS), shared with other ranks, on a GPU, or where /proc/stat cannot be read."""
        if device.type != "cpu" or local_world_size > 1 or "OMP_NUM_THREADS" in os.environ:
            return None
        if not os.access(PROC_STAT, os.R_OK):
            return None
        threads = torch.get_num_threads()
        return cls(usable_cores(), threads) if threads > 1 else None

    def _sample(self) -> Sample:
        return Sample(self._clock(), read_busy_seconds(self.cores, self._read_stat()), self._own())

    def others_cores(self, since: Sample, now: Sample) -> float:
        """How many of our cores other processes kept busy on average between the two samples."""
        wall = now.at - since.at
        others = (now.busy_s - since.busy_s) - (now.own_s - since.own_s)
        return max(0.0, others / wall)

    def rebalance(self) -> int | None:
        """Measure and set the threads; returns the new count when it changed, else None."""
        now = self._clock()
        if now - self._last.at < MIN_INTERVAL_S:
            return None
        sample = self._sample()
        others = self.others_cores(self._last, sample)
        self._last = sample
        taken = max(0, math.ceil(others - TOLERATED_CORES))
        threads = max(1, min(self.full_threads, len(self.cores) - taken))
        if threads == self.threads:
            return None
        self.threads = threads
        self._set_threads(threads)
        return threads

    def restore(self) -> None:
        if self.threads != self.full_threads:
            self.threads = self.full_threads
            self._set_threads(self.full_threads)
