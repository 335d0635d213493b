"""Reading test files: prompt and reference of each format, and errors that name file, line and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openft.comparison.testset import TestCase, TestSetError, read_prompt_set, read_test_set


def write(path: Path, *lines: Any) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_chat_examples_split_at_the_last_assistant_message(tmp_path: Path) -> None:
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris"},
        {"role": "user", "content": "And of Peru?"},
        {"role": "assistant", "content": "Lima"},
    ]
    parts = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
            },
        ]
    }
    path = write(tmp_path / "test.jsonl", {"messages": conversation}, "", parts)
    first, second = read_test_set(path)
    assert first.reference == "Lima" and first.is_chat and first.line == 1
    assert [m["content"] for m in first.messages] == [
        "Be brief.",
        "Capital of France?",
        "Paris",
        "And of Peru?",
    ]
    assert first.prompt_preview().splitlines()[0] == "system: Be brief."
    assert second.line == 3 and second.reference == "Hello"  # blank lines keep their number


def test_prompt_completion_examples(tmp_path: Path) -> None:
    path = write(tmp_path / "test.jsonl", {"prompt": "2+2=", "completion": "4"})
    (case,) = read_test_set(path)
    assert (case.prompt_text, case.reference, case.is_chat) == ("2+2=", "4", False)


def test_max_examples_takes_the_first_ones(tmp_path: Path) -> None:
    lines = [{"prompt": str(i), "completion": "x"} for i in range(5)]
    path = write(tmp_path / "test.jsonl", *lines, "not json")  # never read: the limit comes first
    assert [case.prompt_text for case in read_test_set(path, max_examples=2)] == ["0", "1"]


def test_cases_round_trip_through_dicts() -> None:
    case = TestCase(
        line=4,
        reference="x",
        messages=({"role": "user", "content": "q"},),
        tools=({"type": "function", "function": {"name": "f"}},),
    )
    assert TestCase.from_dict(json.loads(json.dumps(case.to_dict()))) == case


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", r"test\.jsonl: line 2 is not valid JSON"),
        ("[1, 2]", r"test\.jsonl line 2: an example must be a JSON object, not a JSON array"),
        ({"text": "hi"}, r"test\.jsonl line 2: unknown format"),
        (
            {
                "input": {"messages": [{"role": "user", "content": "q"}]},
                "preferred_output": [],
                "non_preferred_output": [],
            },
            r"test\.jsonl line 2, field preferred_output: \"preferred_output\" must be a list",
        ),
        (
            {"messages": [{"role": "user", "content": "q"}]},
            r"test\.jsonl line 2: the example has no assistant message",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a"},
                    {"role": "user", "content": "q2"},
                ]
            },
            r"line 2, field messages\[2\]\.role: the last message is from the user",
        ),
        (
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 5}]},
            r"test\.jsonl line 2, field messages\[1\]",
        ),
        (
            {"messages": [{"rol": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
            r"test\.jsonl line 2, field messages\[0\]",
        ),
        ({"prompt": "q"}, r"test\.jsonl line 2, field completion: \"completion\" is missing"),
    ],
)
def test_bad_lines_name_file_line_and_field(tmp_path: Path, line: Any, expected: str) -> None:
    path = write(tmp_path / "test.jsonl", {"prompt": "ok", "completion": "fine"}, line)
    with pytest.raises(TestSetError, match=expected):
        read_test_set(path)


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TestSetError, match=r"empty\.jsonl has no examples"):
        read_test_set(write(tmp_path / "empty.jsonl", ""))


def test_a_preference_line_is_a_case_whose_reference_is_the_preferred_output(tmp_path: Path) -> None:
    line = {
        "input": {"messages": [{"role": "user", "content": "Capital of France?"}]},
        "preferred_output": [{"role": "assistant", "content": "Paris."}],
        "non_preferred_output": [{"role": "assistant", "content": "Lyon."}],
    }
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps(line) + "\n")
    [case] = read_test_set(path)
    assert case.reference == "Paris."
    assert [m["content"] for m in case.messages] == ["Capital of France?"]


def test_a_prompt_set_keeps_each_line_as_the_graders_item(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    lines = [
        {"messages": [{"role": "user", "content": "Route: my invoice"}], "team": "billing"},
        {
            "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "dropped"}],
            "x": 1,
        },
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    first, second = read_prompt_set(path)
    assert first.item == lines[0] and first.reference == "" and first.messages == tuple(lines[0]["messages"])
    assert second.messages == ({"role": "user", "content": "Hi"},)  # the final answer is not asked
    assert TestCase.from_dict(first.to_dict()) == first
    path.write_text('["not", "an", "object"]\n')
    with pytest.raises(TestSetError, match="line 1: a prompt must be a JSON object"):
        read_prompt_set(path)
