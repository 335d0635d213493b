"""Grader JSON as clients send it: accepted as OpenAI's guide writes it, refused naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from openft.graders.validate import GraderConfigError, validate_grader

STRING = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}
SIMILAR = {
    "type": "text_similarity",
    "name": "close",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "evaluation_metric": "fuzzy_match",
}
PYTHON = {"type": "python", "name": "py", "source": "def grade(sample, item):\n    return 1.0\n"}
SCORE = {
    "type": "score_model",
    "name": "judge",
    "model": "smollm2-135m-instruct",
    "input": [{"role": "user", "content": "Rate {{sample.output_text}} from 0 to 1."}],
}
LABEL = {
    "type": "label_model",
    "name": "label",
    "model": "m",
    "labels": ["good", "bad"],
    "passing_labels": ["good"],
    "input": [{"role": "user", "content": "{{sample.output_text}}"}],
}


@pytest.mark.parametrize("grader", [STRING, SIMILAR, PYTHON, SCORE, LABEL])
def test_each_type_is_accepted_and_echoed(grader: dict[str, Any]) -> None:
    checked = validate_grader(grader)
    assert {key: checked[key] for key in grader} == grader


def test_a_multi_grader_with_its_formula() -> None:
    grader = {
        "type": "multi",
        "name": "both",
        "graders": {"a": STRING, "b": SIMILAR},
        "calculate_output": "0.5 * a + 0.5 * b",
    }
    checked = validate_grader(grader, for_reinforcement=True)
    assert set(checked["graders"]) == {"a", "b"} and checked["calculate_output"] == "0.5 * a + 0.5 * b"


@pytest.mark.parametrize(
    ("grader", "field", "words"),
    [
        ({**STRING, "operation": "contains"}, "operation", "must be one of eq, ne, like, ilike"),
        ({**STRING, "input": "{{output_text}}"}, "input", "not in a known namespace"),
        ({**STRING, "name": ""}, "name", "must not be empty"),
        ({**PYTHON, "source": "def grade(:"}, "source", "does not parse"),
        ({**PYTHON, "source": "def score(sample, item):\n    return 1\n"}, "source", "top-level function"),
        ({**SCORE, "range": [1, 0]}, "range", "low < high"),
        ({**LABEL, "passing_labels": ["great"]}, "passing_labels", "subset of labels"),
        ({**SCORE, "input": [{"role": "judge", "content": "x"}]}, "input[0]", "role"),
        ({"type": "regex", "name": "r"}, "type", "must be one of"),
        (
            {"type": "multi", "name": "m", "graders": {"a": STRING}, "calculate_output": "a + c"},
            "calculate_output",
            "c, which is not among the graders",
        ),
        (
            {"type": "multi", "name": "m", "graders": {"a": STRING}, "calculate_output": "import os"},
            "calculate_output",
            "does not parse",
        ),
        (
            {
                "type": "multi",
                "name": "m",
                "graders": {"a": {**STRING, "operation": "x"}},
                "calculate_output": "a",
            },
            "graders.a.operation",
            "must be one of",
        ),
    ],
)
def test_bad_graders_name_the_field(grader: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(GraderConfigError, match=words) as caught:
        validate_grader(grader)
    assert caught.value.field == field


def test_label_model_only_inside_multi_for_reinforcement() -> None:
    with pytest.raises(GraderConfigError, match="only inside a multi"):
        validate_grader(LABEL, for_reinforcement=True)
    validate_grader(
        {"type": "multi", "name": "m", "graders": {"l": LABEL}, "calculate_output": "l"},
        for_reinforcement=True,
    )
