"""Requests waiting for the scheduler thread, and how their output gets back to the event loop.

Torch-free: the API side creates and cancels jobs; only the scheduler thread touches models.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from openft.inference.types import Delta, GenerationRequest

# Sent after a job's last delta; an Exception instance is sent instead when the job failed.
END = None
Event = Delta | Exception | None


@dataclass
class Job:
    request: GenerationRequest
    # Called from the scheduler thread; must hand the event over without blocking.
    sink: Callable[[Event], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    submitted_at: float = field(default_factory=time.monotonic)
    # Choices not finished yet; the scheduler sends END when it reaches 0.
    remaining_sequences: int = 0
    # time.monotonic() at which its generation stops with "length" (set when it starts), None: no limit.
    deadline_at: float | None = None

    def __post_init__(self) -> None:
        self.remaining_sequences = self.request.params.n

    @property
    def n_sequences(self) -> int:
        return self.request.params.n

    @property
    def n_tokens(self) -> int:
        """The most KV-cache positions its sequences can take: prompt plus max_tokens, for each choice."""
        return self.n_sequences * (len(self.request.prompt_ids) + self.request.params.max_tokens)


class WaitingQueue:
    """FIFO of jobs; the scheduler takes the oldest job and every other job that can share its batch."""

    def __init__(self) -> None:
        self._jobs: deque[Job] = deque()
        self._cv = threading.Condition()
        self.closed = False

    def put(self, job: Job) -> None:
        with self._cv:
            if self.closed:
                raise RuntimeError("the inference engine is closed")
            self._jobs.append(job)
            self._cv.notify()

    def close(self) -> list[Job]:
        """Refuse new jobs; returns the ones still waiting (they will not run)."""
        with self._cv:
            self.closed = True
            left, self._jobs = list(self._jobs), deque()
            self._cv.notify_all()
            return left

    def take_all(self) -> list[Job]:
        """Every waiting job, leaving the queue empty but open."""
        with self._cv:
            left, self._jobs = list(self._jobs), deque()
            return left

    def __len__(self) -> int:
        return len(self._jobs)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until a job waits (True) or the queue is closed (False)."""
        with self._cv:
            self._cv.wait_for(lambda: self._jobs or self.closed, timeout=timeout_s)
            return bool(self._jobs) and not self.closed

    def take_batch(self, max_sequences: int, max_tokens: int) -> list[Job]:
        """The oldest job plus later ones for the same weights, within both limits (the oldest job
        always runs, alone if it alone is over them)."""
        with self._cv:
            self._drop_cancelled()
            if not self._jobs:
                return []
            first = self._jobs.popleft()
            batch, n_sequences, n_tokens = [first], first.n_sequences, first.n_tokens
            for job in list(self._jobs):
                if job.request.model.group_key != first.request.model.group_key:
                    continue
                if n_sequences + job.n_sequences > max_sequences or n_tokens + job.n_tokens > max_tokens:
                    break
                self._jobs.remove(job)
                batch.append(job)
                n_sequences, n_tokens = n_sequences + job.n_sequences, n_tokens + job.n_tokens
            return batch

    def take_joiners(self, group_key: str, max_sequences: int, max_tokens: int) -> list[Job]:
        """Waiting jobs for `group_key` that fit the room a running batch has left, oldest first, without
        blocking. It stops at the first job for other weights: those run next, so later jobs must not
        keep the running batch alive ahead of them."""
        with self._cv:
            self._drop_cancelled()
            joiners: list[Job] = []
            for job in list(self._jobs):
                if job.request.model.group_key != group_key:
                    break
                if job.n_sequences > max_sequences or job.n_tokens > max_tokens:
                    break
                self._jobs.remove(job)
                joiners.append(job)
                max_sequences, max_tokens = max_sequences - job.n_sequences, max_tokens - job.n_tokens
            return joiners

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._jobs if j.cancelled.is_set()]:
            self._jobs.remove(job)
