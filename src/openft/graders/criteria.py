"""Grader configs and grading: `string_check` and `text_similarity`, as an eval's `testing_criteria`.

`normalize_criterion` checks one criterion as the client sent it and returns the stored form (what the
eval object echoes); `grade` scores one (item, sample) pair with it. Pure: errors are `GraderConfigError`
(a bad criterion, a 400 at create time) and `TemplateError` (a field the data lacks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openft.graders import text_similarity
from openft.graders.string_check import compare
from openft.graders.templates import render
from openft.graders.validate import GraderConfigError, validate_grader

__all__ = ["GraderConfigError", "GraderResult", "grade", "normalize_criterion"]

SUPPORTED_TYPES = ("string_check", "text_similarity")
# Grader types the alpha graders endpoints run, but an eval's runs do not yet (a judge or a sandbox per
# output item).
UNSUPPORTED_TYPES = ("label_model", "score_model", "python", "multi")


@dataclass(frozen=True)
class GraderResult:
    name: str
    type: str
    score: float
    passed: bool


def normalize_criterion(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The criterion as the eval stores and echoes it; checked by the graders' one validator."""
    kind = raw.get("type")
    if kind not in SUPPORTED_TYPES:
        why = (
            " (as an eval's testing criterion; the alpha graders endpoints run it)"
            if kind in UNSUPPORTED_TYPES
            else ""
        )
        raise GraderConfigError(
            f"openft does not support testing criteria of type {kind!r}{why}; supported: "
            f"{', '.join(SUPPORTED_TYPES)}.",
            "type",
        )
    grader = validate_grader(raw)
    criterion = {key: grader[key] for key in ("type", "name", "input", "reference")}
    if kind == "string_check":
        criterion["operation"] = grader["operation"]
    else:
        criterion["evaluation_metric"] = grader["evaluation_metric"]
        criterion["pass_threshold"] = _threshold(raw.get("pass_threshold"))
    return criterion


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
        passed = compare(output, reference, criterion["operation"])
        return GraderResult(criterion["name"], "string_check", 1.0 if passed else 0.0, passed)
    score = text_similarity.METRICS[criterion["evaluation_metric"]](output, reference)
    return GraderResult(criterion["name"], "text_similarity", score, score >= criterion["pass_threshold"])
