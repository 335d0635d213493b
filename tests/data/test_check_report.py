"""check_file on valid data: statistics, token counts and masks, the estimate, against hand-computed values.

With the built-in tokenizer every byte is one token, so counts follow from the ChatML layout:
a system or user message costs 10 or 8 tokens plus its text (<|im_start|>, role, newline,
<|im_end|>, newline); an assistant message costs an 11-token header (not trained) plus its text
and <|im_end|> (trained) and a newline (not trained).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from pytest import approx

from openft.data import Distribution, MaskPreview, MaskSpan, TokenStats, TrainingEstimate, check_file

FIXTURES = Path(__file__).parent / "fixtures"
SMALL = [
    # 10+9 + 8+2 + 11+5+2 = 47 tokens, 6 trained ("Hello" and <|im_end|>)
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
    ],
    # 8+4 + 11+1+2 = 26 tokens, 2 trained
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
    # 10+9 + 8+18 + 11+5+2 = 63 tokens, 6 trained; the answer starts at token 56
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris"},
    ],
    # 8+2 + 11+3+2 (weight 0) + 8+3 + 11+4+2 = 54 tokens, 5 trained, from token 48
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hey", "weight": 0},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Bye!"},
    ],
]


def _values(summary: Distribution | None) -> tuple[float, ...]:
    assert summary is not None
    return dataclasses.astuple(summary)


def _write(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_statistics_of_a_small_file(tmp_path: Path, tokenizer: Any) -> None:
    path = _write(tmp_path / "small.jsonl", [{"messages": messages} for messages in SMALL])
    report = check_file(path, tokenizer=tokenizer, lint=False)
    training = report.training
    assert (training.format, training.n_examples, training.n_valid_examples, training.errors) == (
        "chat",
        4,
        4,
        (),
    )
    assert _values(training.messages_per_example) == approx((4, 2, 4, 3.0, 3.0, 2.15, 3.85))
    assert (training.n_missing_system, training.n_missing_user) == (2, 0)
    assert training.tokens is not None
    assert _values(training.tokens.total_tokens) == approx((4, 26, 63, 47.5, 50.5, 29.15, 61.65))
    assert _values(training.tokens.trained_tokens) == approx((4, 2, 6, 4.75, 5.5, 2.45, 6.0))
    assert training.tokens == TokenStats(
        context_length=2048,
        total_tokens=training.tokens.total_tokens,
        trained_tokens=training.tokens.trained_tokens,
        n_tokens=190,
        n_capped_tokens=190,
        n_trained_tokens=19,
        n_over_context=0,
        over_context_lines=(),
    )
    # 4 examples: the auto rule gives min(25, 100 // 4) = 25 epochs.
    assert report.estimate == TrainingEstimate(25, 190, 4750, None, None)
    assert report.blocking_error() is not None  # fewer than 10 examples


def test_long_examples_are_truncated_from_the_end_and_counted(tmp_path: Path, tokenizer: Any) -> None:
    path = _write(tmp_path / "small.jsonl", [{"messages": messages} for messages in SMALL])
    tokens = check_file(path, tokenizer=tokenizer, context_length=50, lint=False).training.tokens
    assert tokens is not None
    assert (tokens.n_over_context, tokens.over_context_lines) == (2, (3, 4))
    assert tokens.n_tokens == 190
    assert tokens.n_capped_tokens == 47 + 26 + 50 + 50
    assert tokens.n_trained_tokens == 6 + 2 + 0 + 2  # line 3 loses its answer, line 4 keeps 2 of 5


def test_the_mask_preview_shows_trained_and_untrained_text(tmp_path: Path, tokenizer: Any) -> None:
    path = _write(tmp_path / "small.jsonl", [{"messages": SMALL[0]}])
    assert check_file(path, tokenizer=tokenizer).training.preview == MaskPreview(
        1,
        (
            MaskSpan(
                "<|im_start|>system\nBe brief.<|im_end|>\n"
                "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                False,
                40,
            ),
            MaskSpan("Hello<|im_end|>", True, 6),
            MaskSpan("\n", False, 1),
        ),
    )


def test_the_cookbook_sample_passes_clean(tokenizer: Any) -> None:
    report = check_file(FIXTURES / "marv.jsonl", tokenizer=tokenizer)
    assert report.ok and report.blocking_error() is None
    assert (report.training.n_examples, report.training.errors, report.lint) == (10, (), ())
    assert report.estimate is not None and report.estimate.n_epochs == 10


def test_fewer_than_ten_examples_is_invalid_n_examples(tmp_path: Path, tokenizer: Any) -> None:
    rows = [json.loads(line) for line in (FIXTURES / "marv.jsonl").read_text().splitlines()[:7]]
    error = check_file(_write(tmp_path / "seven.jsonl", rows), tokenizer=tokenizer).blocking_error()
    assert error is not None
    assert (error.code, error.param, error.line) == ("invalid_n_examples", "training_file", None)
    assert error.message == "Training file has 7 example(s), but must have at least 10 examples"


def test_preference_examples_count_both_answers(tmp_path: Path, tokenizer: Any) -> None:
    row = {
        "input": {"messages": [{"role": "user", "content": "Hi"}]},
        "preferred_output": [{"role": "assistant", "content": "Hello"}],
        "non_preferred_output": [{"role": "assistant", "content": "No"}],
    }
    training = check_file(_write(tmp_path / "dpo.jsonl", [row]), tokenizer=tokenizer).training
    assert training.format == "preference"
    assert training.tokens is not None
    # (10 + 11 + 7) + (10 + 11 + 4) tokens; (5 + 1) + (2 + 1) trained
    assert (training.tokens.n_tokens, training.tokens.n_trained_tokens) == (53, 9)
    assert training.messages_per_example == Distribution(1, 2, 2, 2.0, 2.0, 2.0, 2.0)


def test_prompt_completion_trains_on_the_completion_and_end_of_text(tmp_path: Path, tokenizer: Any) -> None:
    training = check_file(
        _write(tmp_path / "pc.jsonl", [{"prompt": "2+2=", "completion": "4"}]), tokenizer=tokenizer
    ).training
    assert training.tokens is not None
    assert (training.tokens.n_tokens, training.tokens.n_trained_tokens) == (6, 2)
    assert (training.messages_per_example, training.n_missing_system) == (None, 0)


def test_without_a_tokenizer_the_report_has_no_token_statistics(tmp_path: Path) -> None:
    report = check_file(_write(tmp_path / "small.jsonl", [{"messages": m} for m in SMALL]), lint=False)
    assert (report.training.n_valid_examples, report.training.tokens, report.estimate) == (4, None, None)


def test_to_dict_is_json_ready(tokenizer: Any) -> None:
    data = check_file(FIXTURES / "marv.jsonl", tokenizer=tokenizer).to_dict()
    assert json.loads(json.dumps(data))["ok"] is True
    assert data["blocking_error"] is None
    assert data["training"]["tokens"]["n_over_context"] == 0


@pytest.mark.parametrize(
    ("arguments", "shown"),
    [("7" * 5000, "a number has too many digits"), ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply")],
    ids=["huge-integer", "deep-nesting"],
)
def test_tool_call_arguments_python_cannot_read_are_named_plainly(
    tmp_path: Path, tokenizer: Any, arguments: str, shown: str
) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [call]}]}
    report = check_file(_write(tmp_path / "tools.jsonl", [row] * 10), tokenizer=tokenizer, lint=False)
    messages = [issue.message for error in report.training.errors for issue in error.first]
    assert any(shown in message for message in messages), messages
    assert not any("sys." in message or "recursion" in message for message in messages)
