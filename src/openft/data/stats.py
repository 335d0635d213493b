"""Summaries of per-example numbers: min, max, mean, median and real 5th/95th percentiles."""

from __future__ import annotations

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
