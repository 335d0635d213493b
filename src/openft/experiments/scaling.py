"""The data-quantity experiment's arithmetic: nested subsets and the expected gain from doubling the data.

OpenAI's guide suggests estimating the value of more data by fine-tuning on a subset (say half) of the
examples and comparing: the gain from half to all is roughly what the next doubling buys. With several
fractions the estimate is a least-squares line of the metric against log2(number of examples), whose
slope is the gain per doubling. Pure Python: the experiment itself is in `openft.experiments.data_scaling`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def parse_fractions(text: str) -> list[float]:
    """'0.25,0.5,1' -> [0.25, 0.5, 1.0], sorted; each in (0, 1], at least two distinct values."""
    try:
        fractions = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"fractions must be numbers separated by commas, got {text!r}") from None
    if len(fractions) < 2:
        raise ValueError(f"give at least two fractions (for example 0.25,0.5,1.0), got {text!r}")
    if not all(0 < fraction <= 1 for fraction in fractions):
        raise ValueError(f"each fraction must be in (0, 1], got {text!r}")
    return fractions


def nested_subsets(items: Sequence[T], fractions: Sequence[float], seed: int) -> list[list[T]]:
    """One subset per fraction, each a prefix of the same seeded shuffle: every smaller subset is inside
    every larger one, so a difference in scores comes from the added examples, not a different draw."""
    order = list(items)
    random.Random(seed).shuffle(order)
    return [order[: max(1, math.ceil(fraction * len(order)))] for fraction in fractions]


@dataclass(frozen=True)
class ScalingPoint:
    fraction: float
    n_examples: int
    n_epochs: int
    n_steps: int
    scores: dict[str, float]  # metric name -> mean over the test set
    mean_reference_loss: float | None


@dataclass(frozen=True)
class DoublingEstimate:
    """Gain in the metric per doubling of the examples, from a least-squares fit on log2(n)."""

    metric: str
    gain_per_doubling: float
    predicted_at_double: float  # the fit's value at twice the largest subset, clamped to [0, 1]

    def sentence(self, n_examples: int) -> str:
        direction = "gain" if self.gain_per_doubling >= 0 else "loss"
        return (
            f"{self.metric}: expected {direction} from doubling the data to {2 * n_examples} examples: "
            f"{self.gain_per_doubling:+.3f} (to about {self.predicted_at_double:.3f})"
        )


def doubling_estimate(points: Sequence[ScalingPoint], metric: str) -> DoublingEstimate:
    """Fit metric = a + b * log2(n) over the points (distinct sizes needed); b is the gain per doubling."""
    xs = [math.log2(point.n_examples) for point in points]
    ys = [point.scores[metric] for point in points]
    if len(set(xs)) < 2:
        raise ValueError("the subsets must differ in size to estimate the value of more data")
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    at_double = mean_y + slope * (max(xs) + 1 - mean_x)
    return DoublingEstimate(metric, slope, min(1.0, max(0.0, at_double)))


@dataclass(frozen=True)
class ScalingResult:
    base_model: str
    training_file: str
    test_file: str
    n_test_examples: int
    metric_names: list[str]
    baseline: dict[str, float]  # the untrained base model's scores, for reference
    baseline_reference_loss: float | None
    points: list[ScalingPoint]

    @property
    def primary_metric(self) -> str:
        return self.metric_names[0]

    def estimate(self, metric: str | None = None) -> DoublingEstimate:
        return doubling_estimate(self.points, metric or self.primary_metric)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["doubling"] = {name: asdict(self.estimate(name)) for name in self.metric_names}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScalingResult:
        fields = {key: value for key, value in data.items() if key not in ("doubling", "points")}
        return cls(**fields, points=[ScalingPoint(**point) for point in data["points"]])
