"""Per-example summaries: a histogram of counts gives exactly what the sorted values give."""

from __future__ import annotations

import random

import pytest

from openft.data.stats import Histogram, distribution


def _histogram(values: list[int]) -> Histogram:
    histogram = Histogram()
    for value in values:
        histogram.add(value)
    return histogram


@pytest.mark.parametrize(
    "values",
    [
        [7],
        [3, 9],
        [5, 5, 5, 5],
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        [100, 1, 1, 1, 50, 50, 2048, 3],
        random.Random(0).choices(range(1, 3000), k=10_001),
        [random.Random(1).randint(20, 40) for _ in range(777)],
    ],
)
def test_a_histogram_summarises_exactly_like_the_values(values: list[int]) -> None:
    expected = distribution(values)
    found = _histogram(values).distribution()
    assert expected is not None and found is not None
    assert (found.n, found.min, found.max) == (expected.n, expected.min, expected.max)
    assert found.mean == pytest.approx(expected.mean)
    assert (found.median, found.p5, found.p95) == pytest.approx((expected.median, expected.p5, expected.p95))


def test_hand_computed_percentiles_and_an_empty_histogram() -> None:
    # 1..20: p5 at rank 0.95 -> 1.95, median at rank 9.5 -> 10.5, p95 at rank 18.05 -> 19.05.
    summary = _histogram(list(range(1, 21))).distribution()
    assert summary is not None
    assert (summary.p5, summary.median, summary.p95) == pytest.approx((1.95, 10.5, 19.05))
    assert summary.mean == 10.5 and len(_histogram([1, 2])) == 2
    assert Histogram().distribution() is None
