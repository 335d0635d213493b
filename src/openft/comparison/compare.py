"""Base vs fine-tuned on one test set: answers, scores, per-example verdicts and a summary, as JSON.

    cases = read_test_set(Path("test.jsonl"))
    result = compare(cases, candidate=LocalRunner(tuned_dir), baseline=LocalRunner(base_dir))
    print(result.headline)            # exact match: base 0.04 → fine-tuned 0.91
    Path("results.json").write_text(result.to_json())

To compare several candidates with one baseline (the data-scaling experiment), answer with the baseline
once: `evaluate(cases, baseline, names)`, then `compare_results(cases, evaluate(cases, c, names), base)`
for each candidate. Torch-free: the runners hold the models.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from openft.comparison.metrics import default_metric_names, get_metric, metric_label
from openft.comparison.runners import ModelRunner
from openft.comparison.testset import TestCase

Verdict = Literal["improved", "regressed", "same"]
RESULT_OBJECT = "openft.eval.comparison"
RESULT_VERSION = 1
# Scores closer than this are the same (metrics are shares, so float noise is far smaller).
SAME_WITHIN = 1e-9


@dataclass(frozen=True)
class ScoredAnswer:
    text: str
    scores: dict[str, float]  # metric name -> score in [0, 1]
    reference_loss: float | None = None  # mean token loss of the reference; None: runner cannot tell
    truncated: bool = False  # hit its token budget


@dataclass(frozen=True)
class ModelResults:
    """One model's answers to a test set, scored."""

    label: str
    answers: list[ScoredAnswer]


@dataclass(frozen=True)
class ExampleRow:
    case: TestCase
    baseline: ScoredAnswer
    candidate: ScoredAnswer
    verdict: Verdict  # on the primary metric, candidate against baseline


@dataclass(frozen=True)
class ModelSummary:
    label: str
    means: dict[str, float]  # metric name -> mean score over the examples
    mean_reference_loss: float | None  # mean over the examples that have one
    n_truncated: int

    @property
    def perplexity(self) -> float | None:
        return None if self.mean_reference_loss is None else math.exp(self.mean_reference_loss)


@dataclass(frozen=True)
class ComparisonResult:
    metric_names: list[str]
    primary_metric: str
    baseline: ModelSummary
    candidate: ModelSummary
    rows: list[ExampleRow]
    test_file: str | None = None
    created_at: int = field(default_factory=lambda: int(time.time()))

    def count(self, verdict: Verdict) -> int:
        return sum(row.verdict == verdict for row in self.rows)

    @property
    def headline(self) -> str:
        """The primary metric for both models, such as `exact match: base 0.04 → fine-tuned 0.91`."""
        return self.metric_line(self.primary_metric)

    def metric_line(self, name: str) -> str:
        before, after = self.baseline.means[name], self.candidate.means[name]
        return f"{metric_label(name)}: base {before:.2f} → fine-tuned {after:.2f}"

    def loss_line(self) -> str | None:
        """`reference loss: base 3.10 → fine-tuned 0.20`, when both runners measured it."""
        before, after = self.baseline.mean_reference_loss, self.candidate.mean_reference_loss
        if before is None or after is None:
            return None
        return f"reference loss: base {before:.2f} → fine-tuned {after:.2f}"

    def summary_lines(self) -> list[str]:
        """Every metric, the reference loss where known, and the verdict counts."""
        lines = [self.metric_line(name) for name in self.metric_names]
        loss = self.loss_line()
        if loss:
            lines.append(loss)
        lines.append(
            f"{self.count('improved')} improved, {self.count('regressed')} regressed, "
            f"{self.count('same')} the same (by {metric_label(self.primary_metric)}) of {len(self.rows)}"
        )
        return lines

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows"] = [{**asdict(row), "case": row.case.to_dict()} for row in self.rows]
        for role in ("baseline", "candidate"):
            data[role]["perplexity"] = getattr(self, role).perplexity  # for readers of the JSON alone
        summary = {"headline": self.headline, "n_examples": len(self.rows)}
        summary |= {f"n_{verdict}": self.count(verdict) for verdict in ("improved", "regressed", "same")}
        return {"object": RESULT_OBJECT, "version": RESULT_VERSION, **summary, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComparisonResult:
        if data.get("object") != RESULT_OBJECT:
            raise ValueError(f"not an openft evaluation result (object is {data.get('object')!r})")
        return cls(
            metric_names=list(data["metric_names"]),
            primary_metric=data["primary_metric"],
            baseline=_summary_from_dict(data["baseline"]),
            candidate=_summary_from_dict(data["candidate"]),
            rows=[_row_from_dict(row) for row in data["rows"]],
            test_file=data.get("test_file"),
            created_at=int(data["created_at"]),
        )

    @classmethod
    def from_json(cls, text: str) -> ComparisonResult:
        return cls.from_dict(json.loads(text))


def score_answer(case: TestCase, text: str, metric_names: Sequence[str]) -> dict[str, float]:
    return {name: get_metric(name)(text, case.reference) for name in metric_names}


def evaluate(
    cases: Sequence[TestCase],
    runner: ModelRunner,
    metric_names: Sequence[str],
    *,
    max_tokens: int | None = None,
) -> ModelResults:
    """The runner's answers to every case, scored with every metric."""
    answers = runner.answer(cases, max_tokens=max_tokens)
    scored = [
        ScoredAnswer(
            answer.text,
            score_answer(case, answer.text, metric_names),
            answer.reference_loss,
            answer.truncated,
        )
        for case, answer in zip(cases, answers, strict=True)
    ]
    return ModelResults(runner.label, scored)


def compare(
    cases: Sequence[TestCase],
    candidate: ModelRunner,
    baseline: ModelRunner,
    metric_names: Sequence[str] | None = None,
    *,
    primary_metric: str | None = None,
    max_tokens: int | None = None,
    test_file: str | None = None,
) -> ComparisonResult:
    """Answer every case with both models and compare them.

    `metric_names` None: `default_metric_names` of the references. `primary_metric` (default: the first
    metric) decides each example's verdict and the headline. Each runner is closed once it has answered,
    so only one model is loaded at a time.
    """
    names = list(metric_names) if metric_names else default_metric_names([c.reference for c in cases])
    results = []
    for runner in (baseline, candidate):
        try:
            results.append(evaluate(cases, runner, names, max_tokens=max_tokens))
        finally:
            runner.close()
    return compare_results(
        cases, results[1], results[0], names, primary_metric=primary_metric, test_file=test_file
    )


def compare_results(
    cases: Sequence[TestCase],
    candidate: ModelResults,
    baseline: ModelResults,
    metric_names: Sequence[str],
    *,
    primary_metric: str | None = None,
    test_file: str | None = None,
) -> ComparisonResult:
    """A comparison of two models' scored answers to the same cases."""
    names = list(metric_names)
    if not names:
        raise ValueError("no metrics to compare with")
    primary = primary_metric or names[0]
    if primary not in names:
        raise ValueError(f"the primary metric {primary!r} is not among the metrics {names}")
    rows = [
        ExampleRow(case, before, after, _verdict(before.scores[primary], after.scores[primary]))
        for case, before, after in zip(cases, baseline.answers, candidate.answers, strict=True)
    ]
    return ComparisonResult(
        metric_names=names,
        primary_metric=primary,
        baseline=summarize(baseline, names),
        candidate=summarize(candidate, names),
        rows=rows,
        test_file=test_file,
    )


def summarize(results: ModelResults, metric_names: Sequence[str]) -> ModelSummary:
    answers = results.answers
    means = {name: _mean([a.scores[name] for a in answers]) or 0.0 for name in metric_names}
    losses = [a.reference_loss for a in answers if a.reference_loss is not None]
    return ModelSummary(results.label, means, _mean(losses), sum(a.truncated for a in answers))


def _verdict(before: float, after: float) -> Verdict:
    if after > before + SAME_WITHIN:
        return "improved"
    if after < before - SAME_WITHIN:
        return "regressed"
    return "same"


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _row_from_dict(data: dict[str, Any]) -> ExampleRow:
    return ExampleRow(
        case=TestCase.from_dict(data["case"]),
        baseline=ScoredAnswer(**data["baseline"]),
        candidate=ScoredAnswer(**data["candidate"]),
        verdict=data["verdict"],
    )


def _summary_from_dict(data: dict[str, Any]) -> ModelSummary:
    return ModelSummary(data["label"], dict(data["means"]), data["mean_reference_loss"], data["n_truncated"])
