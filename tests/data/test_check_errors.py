"""One fixture file per error class: the report lists every occurrence, with line, message and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openft.data import BlockingError, ErrorClass, Issue, check_file

FIXTURES = Path(__file__).parent / "fixtures" / "errors"

# Per fixture: example counts and every error class with its first occurrences (reviewed by hand).
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "expected.json").read_text())


def _expected_classes(expected: list[dict[str, Any]]) -> tuple[ErrorClass, ...]:
    return tuple(
        ErrorClass(
            error["code"], error["count"], tuple(Issue(error["code"], **issue) for issue in error["first"])
        )
        for error in expected
    )


def test_every_error_class_has_a_fixture() -> None:
    from openft.data.issues import ERROR_CODES

    # The reinforcement prompt classes are checked in test_check_prompts.py (they need the method).
    prompt_only = {"invalid_prompt", "missing_grader_field"}
    assert set(EXPECTED) == set(ERROR_CODES) - {"invalid_n_examples"} - prompt_only
    assert {path.stem for path in FIXTURES.glob("*.jsonl")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_report_is_exact(name: str, tokenizer: Any) -> None:
    expected = EXPECTED[name]
    max_line_bytes = 300 if name == "line_too_long" else 16 * 1024 * 1024
    path = FIXTURES / f"{name}.jsonl"
    report = check_file(path, tokenizer=tokenizer, max_line_bytes=max_line_bytes, lint=False)
    counts = (report.training.n_examples, report.training.n_valid_examples)
    assert counts == (expected["n_examples"], expected["n_valid_examples"])
    assert report.training.errors == _expected_classes(expected["errors"])
    assert report.training.n_errors == sum(error["count"] for error in expected["errors"])


def test_the_blocking_error_uses_openai_wording_plus_line_and_field(tokenizer: Any) -> None:
    report = check_file(FIXTURES / "message_missing_key.jsonl", tokenizer=tokenizer)
    assert report.blocking_error() == BlockingError(
        "invalid_training_file",
        "The job failed due to an invalid training file. Invalid file format. Example 2, message 1 "
        "Discriminator 'role' is missing in value: add \"role\" to the message. "
        "(line 2, field messages[0].role)",
        "training_file",
        2,
    )
    assert not report.ok


def test_unknown_format_blocks_with_openai_message(tokenizer: Any) -> None:
    error = check_file(FIXTURES / "unknown_format.jsonl", tokenizer=tokenizer).blocking_error()
    assert error is not None
    assert error.message == (
        "The job failed due to an invalid training file. Unexpected file format, expected either "
        "prompt/completion pairs or chat messages. Line 1: Unexpected file format, expected either "
        'prompt/completion pairs or chat messages. The object has "text", "label".'
    )


def test_the_report_keeps_the_first_five_of_each_class_and_counts_all(tmp_path: Path, tokenizer: Any) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"messages": [{"role": "bot", "content": "x"}]}\n' * 12)
    errors = check_file(path, tokenizer=tokenizer).training.errors
    assert [(error.code, error.count, [issue.line for issue in error.first]) for error in errors] == [
        ("unrecognized_role", 12, [1, 2, 3, 4, 5]),
        ("example_missing_assistant_message", 12, [1, 2, 3, 4, 5]),
    ]
