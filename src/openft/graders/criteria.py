"""Grader configs and grading: `string_check` and `text_similarity`, as an eval's `testing_criteria`.

`normalize_criterion` checks one criterion as the client sent it and returns the stored form (what the
eval object echoes); `grade` scores one (item, sample) pair with it. Pure: errors are `GraderConfigError`
(a bad criterion, a 400 at create time) and `TemplateError` (a field the data lacks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openft.graders import text_similarity as similarity
from openft.graders.string_check import STRING_CHECK_OPERATIONS, string_check
from openft.graders.templates import TemplateError, check_namespaces, render

SUPPORTED_TYPES = ("string_check", "text_similarity")
# OpenAI's grader types that need a grading model or a sandbox openft does not have.
UNSUPPORTED_TYPES = ("label_model", "score_model", "python", "multi")


class GraderConfigError(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class GraderResult:
    name: str
    type: str
    score: float
    passed: bool


def normalize_criterion(raw: Mapping[str, Any]) -> dict[str, Any]:
    kind = raw.get("type")
    if kind not in SUPPORTED_TYPES:
        why = " (it needs a grading model or a code sandbox)" if kind in UNSUPPORTED_TYPES else ""
        raise GraderConfigError(
            f"openft does not support testing criteria of type {kind!r}{why}; supported: "
            f"{', '.join(SUPPORTED_TYPES)}.",
            "type",
        )
    criterion: dict[str, Any] = {"type": kind}
    for field in ("name", "input", "reference"):
        criterion[field] = _text_field(raw, field)
    for field in ("input", "reference"):
        try:
            check_namespaces(criterion[field])
        except TemplateError as exc:
            raise GraderConfigError(exc.message, field) from None
    if kind == "string_check":
        criterion["operation"] = _operation(raw.get("operation"))
    else:
        criterion["evaluation_metric"] = _metric(raw.get("evaluation_metric"))
        criterion["pass_threshold"] = _threshold(raw.get("pass_threshold"))
    return criterion


def _text_field(raw: Mapping[str, Any], field: str) -> str:
    value = raw.get(field)
    if not isinstance(value, str):
        raise GraderConfigError(f"Missing required parameter: '{field}' (a string).", field)
    if field == "name" and not value:
        raise GraderConfigError("name must not be empty.", field)
    return value


def _operation(value: Any) -> str:
    if value not in STRING_CHECK_OPERATIONS:
        raise GraderConfigError(
            f"operation must be one of {', '.join(STRING_CHECK_OPERATIONS)}; got {value!r}.", "operation"
        )
    return str(value)


def _metric(value: Any) -> str:
    if isinstance(value, str) and value in similarity.UNSUPPORTED_METRICS:
        raise GraderConfigError(
            f"openft does not support evaluation_metric {value!r}: "
            f"{similarity.UNSUPPORTED_METRICS[value]}. Supported: {', '.join(similarity.METRICS)}.",
            "evaluation_metric",
        )
    if value not in similarity.METRICS:
        raise GraderConfigError(
            f"evaluation_metric must be one of {', '.join(similarity.METRICS)}; got {value!r}.",
            "evaluation_metric",
        )
    return str(value)


def _threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GraderConfigError("Missing required parameter: 'pass_threshold' (a number).", "pass_threshold")
    if not 0 <= value <= 1:
        raise GraderConfigError(f"pass_threshold must be between 0 and 1; got {value}.", "pass_threshold")
    return float(value)


def grade(criterion: Mapping[str, Any], namespaces: Mapping[str, Any]) -> GraderResult:
    """Score one item: `namespaces` holds `item` and (where there is one) `sample`."""
    output = render(criterion["input"], namespaces)
    reference = render(criterion["reference"], namespaces)
    if criterion["type"] == "string_check":
        passed = string_check(output, reference, criterion["operation"])
        return GraderResult(criterion["name"], "string_check", 1.0 if passed else 0.0, passed)
    score = similarity.METRICS[criterion["evaluation_metric"]](output, reference)
    return GraderResult(criterion["name"], "text_similarity", score, score >= criterion["pass_threshold"])
