"""An eval's `testing_criteria`: OpenAI's graders as the Evals API stores and applies them.

`normalize_criterion` checks one criterion as the client sent it (the graders' one validator, plus the
pass threshold) and returns the stored form that the eval object echoes. `grade_items` scores a batch of
(sample, item) pairs with every criterion through `openft.graders.run.grade_samples` (so a python grader
starts one sandbox per batch and model graders ask the judge the caller passes) and decides pass/fail.
A criterion that reads a field an item lacks makes that item an error (`TemplateError`), as before any
grading.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openft.graders.model_graders import Judge
from openft.graders.outcome import Outcome
from openft.graders.run import grade_samples
from openft.graders.templates import TemplateError, check_renders
from openft.graders.text_similarity import Embedder
from openft.graders.validate import GraderConfigError, validate_grader

__all__ = [
    "GraderConfigError",
    "GraderResult",
    "grade_items",
    "normalize_criterion",
    "pass_threshold",
    "templates_of",
]

# Graders whose reward is 1 or 0: they pass on 1 and take no threshold.
_PASS_OR_FAIL = ("string_check", "label_model")


@dataclass(frozen=True)
class GraderResult:
    name: str
    type: str
    score: float
    passed: bool


def normalize_criterion(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The criterion as the eval stores and echoes it."""
    criterion = validate_grader(raw)
    kind = criterion["type"]
    if kind == "text_similarity":  # OpenAI requires it for this type
        criterion["pass_threshold"] = _threshold(raw.get("pass_threshold"), unit=True)
    elif kind not in _PASS_OR_FAIL and raw.get("pass_threshold") is not None:
        criterion["pass_threshold"] = _threshold(raw["pass_threshold"], unit=False)
    return criterion


def pass_threshold(criterion: Mapping[str, Any]) -> float:
    """The reward at which an item passes: 1 for pass/fail graders, else the criterion's threshold, or
    the middle of a score_model's range, or 0.5."""
    if criterion["type"] in _PASS_OR_FAIL:
        return 1.0
    if criterion.get("pass_threshold") is not None:
        return float(criterion["pass_threshold"])
    if criterion["type"] == "score_model":
        low, high = criterion["range"]
        return (float(low) + float(high)) / 2
    return 0.5


def grade_items(
    criteria: Sequence[Mapping[str, Any]],
    samples: Sequence[tuple[Mapping[str, Any] | None, Mapping[str, Any]]],
    *,
    judge: Judge | None = None,
    embed: Embedder | None = None,
) -> list[list[GraderResult] | TemplateError]:
    """For each (sample namespace or None, item): every criterion's result, or the TemplateError that
    makes the item an error."""
    results: list[list[GraderResult] | TemplateError] = []
    gradable: list[int] = []
    for index, (sample, item) in enumerate(samples):
        problem = _missing_field(criteria, {"item": item, "sample": sample})
        results.append(problem if problem is not None else [])
        if problem is None:
            gradable.append(index)
    pairs = [(dict(samples[i][0] or {"output_text": ""}), samples[i][1]) for i in gradable]
    for criterion in criteria:
        outcomes = grade_samples(criterion, pairs, judge=judge, embed=embed) if pairs else []
        for index, outcome in zip(gradable, outcomes, strict=True):
            entry = results[index]
            assert isinstance(entry, list)
            entry.append(_result(criterion, outcome))
    return results


def _result(criterion: Mapping[str, Any], outcome: Outcome) -> GraderResult:
    score = outcome.reward
    passed = not outcome.errors.any() and score >= pass_threshold(criterion)
    return GraderResult(criterion["name"], criterion["type"], score, passed)


def _missing_field(
    criteria: Sequence[Mapping[str, Any]], namespaces: Mapping[str, Any]
) -> TemplateError | None:
    for criterion in criteria:
        for template in templates_of(criterion):
            try:
                check_renders(template, namespaces)
            except TemplateError as exc:
                if exc.reference is not None and exc.reference.startswith("sample.output_json"):
                    continue  # a sample that is not JSON: the grader's sample_parse_error, not an item error
                return exc
    return None


def templates_of(grader: Mapping[str, Any]) -> Iterator[str]:
    """Every template string of a grader: its input and reference, its messages, its sub-graders'."""
    for key in ("input", "reference"):
        value = grader.get(key)
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):  # a model grader's messages
            for message in value:
                content = message.get("content")
                parts = content if isinstance(content, list) else [content]
                yield from (p if isinstance(p, str) else str(p.get("text", "")) for p in parts if p)
    for sub in (grader.get("graders") or {}).values():
        yield from templates_of(sub)


def _threshold(value: Any, *, unit: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GraderConfigError("Missing required parameter: 'pass_threshold' (a number).", "pass_threshold")
    if unit and not 0 <= value <= 1:
        raise GraderConfigError(f"pass_threshold must be between 0 and 1; got {value}.", "pass_threshold")
    return float(value)
