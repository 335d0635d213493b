"""The data-quantity experiment: nested subsets, the doubling estimate, and a real run of the command."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openft.cli.main import app
from openft.experiments.scaling import (
    ScalingPoint,
    ScalingResult,
    doubling_estimate,
    nested_subsets,
    parse_fractions,
)
from openft.experiments.scaling_html import render_scaling_html
from openft.train.synthetic import make_split, write_jsonl


def _point(n_examples: int, score: float) -> ScalingPoint:
    return ScalingPoint(0.0, n_examples, 3, 3 * n_examples, {"exact_match": score}, None)


def test_subsets_are_nested_prefixes_of_one_seeded_shuffle() -> None:
    items = list(range(100))
    small, half, everything = nested_subsets(items, [0.25, 0.5, 1.0], seed=3)
    assert (len(small), len(half), len(everything)) == (25, 50, 100)
    assert set(small) < set(half) < set(everything) == set(items)
    assert half[:25] == small  # the smaller subset is the larger one's beginning
    assert nested_subsets(items, [0.25], seed=3)[0] == small  # same seed, same draw
    assert nested_subsets(items, [0.25], seed=4)[0] != small
    assert nested_subsets(list(range(3)), [0.1], seed=0)[0] != []  # never empty


def test_fractions_are_parsed_sorted_and_checked() -> None:
    assert parse_fractions("1.0, 0.25,0.5") == [0.25, 0.5, 1.0]
    for bad in ("0.5", "0,1", "0.5,1.5", "half,1"):
        with pytest.raises(ValueError):
            parse_fractions(bad)


def test_gain_per_doubling_is_the_slope_on_log2_examples() -> None:
    # Exactly +0.1 per doubling: 0.3 at 25, 0.4 at 50, 0.5 at 100 -> 0.6 expected at 200.
    estimate = doubling_estimate([_point(25, 0.3), _point(50, 0.4), _point(100, 0.5)], "exact_match")
    assert estimate.gain_per_doubling == pytest.approx(0.1)
    assert estimate.predicted_at_double == pytest.approx(0.6)
    assert "+0.100" in estimate.sentence(100) and "200 examples" in estimate.sentence(100)
    # Two points: the gain from half to all is the estimate, as the guide describes; clamped at 1.
    two = doubling_estimate([_point(50, 0.7), _point(100, 0.95)], "exact_match")
    assert two.gain_per_doubling == pytest.approx(0.25) and two.predicted_at_double == 1.0
    # Least squares, hand-computed: x = 0, 1, 2 (times log2 10), y = 0.2, 0.6, 0.7 -> slope 0.25.
    fit = doubling_estimate([_point(10, 0.2), _point(20, 0.6), _point(40, 0.7)], "exact_match")
    assert fit.gain_per_doubling == pytest.approx(0.25)
    assert fit.predicted_at_double == pytest.approx(0.5 + 0.25 * 2)
    with pytest.raises(ValueError):
        doubling_estimate([_point(10, 0.2), _point(10, 0.3)], "exact_match")


class _SvgCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.points = 0
        self.rows = 0
        self.in_points_table = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = dict(attrs).get("class") or ""
        self.points += tag == "circle" and "point" in classes
        if tag == "table":
            self.in_points_table = dict(attrs).get("id") == "points"
        self.rows += tag == "tr" and self.in_points_table


def test_the_report_has_a_row_and_a_plotted_point_per_subset() -> None:
    result = ScalingResult(
        "openft-tiny",
        "t<rain>.jsonl",
        "test.jsonl",
        40,
        ["exact_match"],
        {"exact_match": 0.0},
        5.1,
        [_point(25, 0.3), _point(50, 0.4), _point(100, 0.5)],
    )
    page = render_scaling_html(result)
    counter = _SvgCounter()
    counter.feed(page)
    assert counter.points == 3 and counter.rows == 1 + 1 + 3  # header, base, subsets
    assert "t&lt;rain&gt;.jsonl" in page and "t<rain>" not in page
    assert "200 examples" in page
    assert ScalingResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


@pytest.mark.slow
def test_data_scaling_command_trains_each_subset_and_estimates_the_gain(tmp_path: Path) -> None:
    """Three nested subsets of the synthetic task on openft-tiny (1,050 steps in all)."""
    train, held_out = make_split(n_train=200, n_held_out=30, seed=1)
    training_file = write_jsonl(tmp_path / "train.jsonl", train)
    test_file = write_jsonl(tmp_path / "test.jsonl", held_out)
    work_dir, report, results = tmp_path / "work", tmp_path / "scaling.html", tmp_path / "scaling.json"
    outcome = CliRunner().invoke(
        app,
        [
            "experiment",
            "data-scaling",
            "--model=openft-tiny",
            f"--training-file={training_file}",
            f"--test-file={test_file}",
            "--fractions=0.25,0.5,1.0",
            "--metric=exact_match,token_f1",
            f"--work-dir={work_dir}",
            f"--out={report}",
            f"--json={results}",
            f"--data-dir={tmp_path / 'data'}",
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert "expected gain from doubling" in outcome.output or "expected loss from doubling" in outcome.output

    result = ScalingResult.from_dict(json.loads(results.read_text()))
    assert [p.n_examples for p in result.points] == [50, 100, 200]
    # OpenAI's auto epochs per subset (3 here), batch size 1: one step per visit.
    assert [p.n_epochs for p in result.points] == [3, 3, 3]
    assert [p.n_steps for p in result.points] == [150, 300, 600]
    subsets = [
        (work_dir / f"fraction-{f:g}" / "train.jsonl").read_text().splitlines() for f in (0.25, 0.5, 1)
    ]
    assert set(subsets[0]) < set(subsets[1]) < set(subsets[2])
    assert all((work_dir / f"fraction-{f:g}" / "run" / "final").is_dir() for f in (0.25, 0.5, 1))

    # The untrained base answers nothing right; more data, more right answers (measured: 0.00 at 50
    # examples, 0.03 at 100, 0.33 at 200; the learning test reaches 0.94 at 400).
    assert result.baseline["exact_match"] <= 0.05
    assert result.points[-1].scores["exact_match"] >= 0.2
    assert result.points[-1].scores["exact_match"] > result.points[0].scores["exact_match"]
    assert result.baseline_reference_loss is not None and result.points[-1].mean_reference_loss is not None
    assert result.points[-1].mean_reference_loss < result.baseline_reference_loss
    estimate = result.estimate()
    assert math.isfinite(estimate.gain_per_doubling) and estimate.gain_per_doubling > 0
    assert report.read_text().count('class="point"') == 2 * 3  # two metrics, three subsets
