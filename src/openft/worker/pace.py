"""How fast a run goes, from the recipe's reports: trained tokens per second and the estimated finish.

Both are measured from the first reported step on, so the start-up (loading, the first step's warm-up)
does not count against the rate.
"""

from __future__ import annotations

import time


class RunPace:
    def __init__(self) -> None:
        self.step = 0
        self.total_steps: int | None = None
        self._first: tuple[float, int, int] | None = None  # (time, step, trained tokens) at the first step
        self._latest: tuple[float, int, int] | None = None

    def progress(self, step: int, trained_tokens: int, now: float | None = None) -> None:
        at = time.time() if now is None else now
        self._latest = (at, step, trained_tokens)
        if self._first is None:
            self._first = self._latest

    def metrics(self, step: int, total_steps: int, now: float | None = None) -> None:
        self.step, self.total_steps = step, total_steps
        if self._first is None:  # a recipe that reports no progress: the ETA still works from steps
            self._first = (time.time() if now is None else now, step, 0)

    def tokens_per_s(self) -> float | None:
        if self._first is None or self._latest is None:
            return None
        (t0, step0, tokens0), (t1, step1, tokens1) = self._first, self._latest
        return (tokens1 - tokens0) / (t1 - t0) if step1 > step0 and t1 > t0 else None

    def seconds_left(self, now: float | None = None) -> float | None:
        if self._first is None or self.total_steps is None or self.step <= self._first[1]:
            return None
        at = time.time() if now is None else now
        seconds_per_step = (at - self._first[0]) / (self.step - self._first[1])
        return seconds_per_step * (self.total_steps - self.step)

    def estimated_finish(self) -> int | None:
        left = self.seconds_left()
        return None if left is None else int(time.time() + left)
