"""The worker's reading of a run's pace: tokens/s and time left, from the recipe's reports."""

from __future__ import annotations

import pytest

from openft.worker.pace import RunPace


def test_the_rate_and_time_left_are_measured_from_the_first_step_on() -> None:
    pace = RunPace()
    pace.progress(1, 1_000, now=100.0)  # the first step carries the warm-up: not counted
    pace.metrics(1, 11, now=100.0)
    assert pace.tokens_per_s() is None and pace.seconds_left(now=100.0) is None

    pace.progress(6, 6_000, now=110.0)
    pace.metrics(6, 11, now=110.0)
    assert pace.tokens_per_s() == pytest.approx(500.0)  # 5,000 tokens in 10 s
    assert pace.seconds_left(now=110.0) == pytest.approx(10.0)  # 5 steps left at 2 s a step


def test_a_run_without_progress_reports_still_has_an_estimate() -> None:
    pace = RunPace()
    pace.metrics(1, 3, now=0.0)
    pace.metrics(2, 3, now=4.0)
    assert pace.tokens_per_s() is None and pace.seconds_left(now=4.0) == pytest.approx(4.0)
