"""Comparisons from scored answers: verdicts, summary, headline, JSON round trip and the HTML report."""

from __future__ import annotations

import json

import pytest

from openft.comparison.compare import (
    ComparisonResult,
    ModelResults,
    ScoredAnswer,
    compare_results,
    score_answer,
)
from openft.comparison.html_report import render_html, word_diff
from openft.comparison.testset import TestCase
from tests.comparison.report_parser import parse_report

METRICS = ["exact_match", "token_f1"]
NASTY = '<script>alert("x")</script> & </td></tr>'


def scored(cases: list[TestCase], answers: list[str], losses: list[float | None], label: str) -> ModelResults:
    return ModelResults(
        label,
        [
            ScoredAnswer(text, score_answer(case, text, METRICS), loss)
            for case, text, loss in zip(cases, answers, losses, strict=True)
        ],
    )


@pytest.fixture
def result() -> ComparisonResult:
    cases = [
        TestCase(line=1, reference="Paris", messages=({"role": "user", "content": "Capital of France?"},)),
        TestCase(line=2, reference="Lima", messages=({"role": "user", "content": "Capital of Peru?"},)),
        TestCase(line=3, reference="cold", messages=({"role": "user", "content": NASTY},)),
        TestCase(line=5, reference=NASTY, prompt_text="Echo: "),
    ]
    base = scored(cases, ["Lyon", "Lima", "", "nothing"], [3.0, 2.0, 4.0, 5.0], "openft-tiny")
    tuned = scored(cases, ["Paris", "Lima is it", "cold", NASTY], [0.5, 1.0, 0.2, 0.3], "runs/demo")
    return compare_results(cases, tuned, base, METRICS, test_file="test.jsonl")


def test_verdicts_summary_and_headline(result: ComparisonResult) -> None:
    assert [row.verdict for row in result.rows] == ["improved", "regressed", "improved", "improved"]
    assert (result.count("improved"), result.count("regressed"), result.count("same")) == (3, 1, 0)
    assert result.baseline.means["exact_match"] == 0.25 and result.candidate.means["exact_match"] == 0.75
    # token F1 of "Lima is it" against "Lima": precision 1/3, recall 1 -> 0.5
    assert result.rows[1].candidate.scores["token_f1"] == pytest.approx(0.5)
    assert result.headline == "exact match: base 0.25 → fine-tuned 0.75"
    assert result.baseline.mean_reference_loss == pytest.approx(3.5)
    assert result.candidate.perplexity == pytest.approx(2.718281828**0.5)
    assert "reference loss: base 3.50 → fine-tuned 0.50" in result.summary_lines()
    assert result.summary_lines()[-1] == "3 improved, 1 regressed, 0 the same (by exact match) of 4"


def test_the_primary_metric_decides_verdicts(result: ComparisonResult) -> None:
    cases = [row.case for row in result.rows]
    base = ModelResults("b", [row.baseline for row in result.rows])
    tuned = ModelResults("t", [row.candidate for row in result.rows])
    by_f1 = compare_results(cases, tuned, base, METRICS, primary_metric="token_f1")
    assert by_f1.rows[1].verdict == "regressed" and by_f1.headline.startswith("token f1: base")
    with pytest.raises(ValueError, match="primary metric 'json_valid'"):
        compare_results(cases, tuned, base, METRICS, primary_metric="json_valid")


def test_json_round_trip(result: ComparisonResult) -> None:
    data = json.loads(result.to_json())
    assert data["object"] == "openft.eval.comparison" and data["headline"] == result.headline
    assert (data["n_examples"], data["n_improved"], data["n_regressed"]) == (4, 3, 1)
    assert data["candidate"]["perplexity"] == pytest.approx(result.candidate.perplexity)
    assert data["rows"][3]["case"] == {"line": 5, "reference": NASTY, "prompt_text": "Echo: "}
    assert ComparisonResult.from_json(result.to_json()) == result
    with pytest.raises(ValueError, match="not an openft evaluation result"):
        ComparisonResult.from_json('{"object": "list"}')


def test_losses_unknown_to_a_runner_stay_none() -> None:
    cases = [TestCase(line=1, reference="a", messages=({"role": "user", "content": "q"},))]
    result = compare_results(
        cases, scored(cases, ["a"], [None], "t"), scored(cases, ["b"], [None], "b"), METRICS
    )
    assert result.candidate.mean_reference_loss is None and result.candidate.perplexity is None
    assert result.loss_line() is None
    assert ComparisonResult.from_json(result.to_json()) == result
    assert "n/a" in render_html(result)


def test_the_report_has_every_example_escaped_with_filters(result: ComparisonResult) -> None:
    html = render_html(result)
    report = parse_report(html)
    assert report.external == []  # self-contained
    assert report.tags.count("script") == 1 and "style" in report.tags  # only our own script
    assert report.filters == ["all", "improved", "regressed", "same"]
    assert report.headline == "exact match: base 0.25 → fine-tuned 0.75"
    assert [row.attributes["data-line"] for row in report.rows] == ["1", "2", "3", "5"]
    assert [row.attributes["data-verdict"] for row in report.rows] == [
        "improved",
        "regressed",
        "improved",
        "improved",
    ]
    _, prompt, reference, _, tuned_answer, *_, verdict = report.rows[3].cells
    # The text survives escaping exactly: what the browser shows is what the model said.
    assert (prompt, reference, tuned_answer, verdict) == ("Echo: ", NASTY, NASTY, "improved")
    assert report.rows[2].cells[1] == f"user: {NASTY}"
    assert '<script>alert("x")' not in html


def test_word_diff_marks_extra_and_missing_words() -> None:
    assert word_diff("the cat sat", "the cat sat") == "the cat sat"
    assert (
        word_diff("the cat sat", "the dog sat")
        == 'the <del class="missing">cat</del><mark class="diff">dog</mark> sat'
    )
    assert word_diff("a", "a <b>") == 'a<mark class="diff"> &lt;b&gt;</mark>'
    assert word_diff("Paris", "") == '<del class="missing">Paris</del>'
