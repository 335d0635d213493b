"""Summaries of per-example numbers: min, max, mean, median and real 5th/95th percentiles.

Counts per example (tokens, messages) are kept as a `Histogram`: how many examples have each value. The
summary is exactly what the sorted list of values would give, in memory that grows with the distinct
values (at most the context length), not with the number of examples.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Distribution:
    n: int
    min: float
    max: float
    mean: float
    median: float
    p5: float
    p95: float

    def to_text(self) -> str:
        return (
            f"min {self.min:g} / max {self.max:g}, mean {self.mean:.1f} / median {self.median:g}, "
            f"p5 {self.p5:g} / p95 {self.p95:g}"
        )


class Histogram:
    """How many times each integer value was added."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.n = 0
        self.total = 0

    def add(self, value: int) -> None:
        self.counts[value] = self.counts.get(value, 0) + 1
        self.n += 1
        self.total += value

    def __len__(self) -> int:
        return self.n

    def distribution(self) -> Distribution | None:
        """The same summary as `distribution(every value added)`."""
        if not self.n:
            return None
        values = sorted(self.counts)
        ends: list[int] = []  # ends[i]: how many values are <= values[i]
        for value in values:
            ends.append((ends[-1] if ends else 0) + self.counts[value])

        def nth(rank: int) -> int:  # the rank-th smallest value, from 0
            return values[bisect.bisect_right(ends, rank)]

        def quantile(q: float) -> float:  # numpy's default: linear between the closest ranks
            position = (self.n - 1) * q
            below = math.floor(position)
            low = nth(below)
            return float(low if below + 1 >= self.n else low + (position - below) * (nth(below + 1) - low))

        return Distribution(
            self.n, values[0], values[-1], self.total / self.n, quantile(0.5), quantile(0.05), quantile(0.95)
        )


def distribution(values: Sequence[float]) -> Distribution | None:
    """Summarise `values` (a list, or a compact `array` of numbers); None when there are none.

    Percentiles interpolate linearly between the closest ranks (numpy's default method). The
    cookbook labels p10/p90 as "p5/p95"; these are the real ones.
    """
    if not len(values):
        return None
    import numpy as np  # imported when a report is built, not when openft.data is

    ordered = np.sort(np.asarray(values, dtype=np.float64))
    median, p5, p95 = (float(q) for q in np.quantile(ordered, [0.5, 0.05, 0.95]))
    return Distribution(
        len(ordered), float(ordered[0]), float(ordered[-1]), float(ordered.mean()), median, p5, p95
    )
