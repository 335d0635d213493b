"""Reinforcement prompt files through the data checker: every line a prompt, the grader's fields in
every line, prompt tokens, the prompt lint and the reinforcement job's steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openft.data import check_file
from openft.data.check import ReinforcementPlan
from openft.data.render import render_prompt
from openft.graders.item_fields import ItemFields

GRADER = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}
PLAN = ReinforcementPlan(batch_size=4, samples_per_prompt=4, answer_tokens=128)


def prompt_lines(n: int) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "system", "content": "Answer with one word."},
                {"role": "user", "content": f"What is item {i}?"},
            ],
            "answer": f"a{i}",
        }
        for i in range(n)
    ]


def write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_a_good_prompt_file_passes_with_its_counts(tmp_path: Path, tokenizer: Any) -> None:
    lines = prompt_lines(10)
    path = write(tmp_path / "prompts.jsonl", lines)
    fields = ItemFields(GRADER)
    report = check_file(
        path, tokenizer=tokenizer, method="reinforcement", grader_fields=fields, reinforcement=PLAN
    )
    assert report.ok and report.method == "reinforcement"
    training = report.training
    assert (training.format, training.n_examples, training.n_valid_examples) == ("prompt", 10, 10)
    assert training.tokens is not None
    expected = sum(len(render_prompt(tokenizer, line["messages"])) for line in lines)
    assert training.tokens.n_tokens == expected and training.tokens.n_trained_tokens == 0
    assert report.estimate is None  # no supervised token estimate for a reinforcement job
    rl = report.reinforcement
    assert rl is not None
    assert (rl.n_epochs, rl.steps_per_epoch, rl.n_steps) == (10, 3, 30)  # auto epochs for 10; ceil(10/4)
    assert rl.n_sampled_answers == 10 * 4 * 10
    assert report.lint == ()


def test_a_final_assistant_message_is_dropped_and_hinted(tmp_path: Path, tokenizer: Any) -> None:
    lines = prompt_lines(10)
    lines[2]["messages"].append({"role": "assistant", "content": "a2"})
    path = write(tmp_path / "prompts.jsonl", lines)
    report = check_file(path, tokenizer=tokenizer, method="reinforcement")
    assert report.ok
    assert report.training.tokens is not None
    # counted as the recipe samples: without the written answer
    assert report.training.tokens.total_tokens.max == len(render_prompt(tokenizer, lines[2]["messages"][:-1]))
    assert report.training.prompts is not None
    assert report.training.prompts.final_answers.lines == [3]
    assert [(finding.code, finding.lines) for finding in report.lint] == [("final_assistant_message", (3,))]


def test_bad_lines_are_named_with_line_and_field(tmp_path: Path, tokenizer: Any) -> None:
    lines: list[Any] = prompt_lines(10)
    lines[3] = {"messages": [{"role": "assistant", "content": "hi"}], "answer": "x"}
    lines[5]["messages"][1] = {"role": "user"}
    del lines[7]["answer"]
    path = write(tmp_path / "prompts.jsonl", lines)
    report = check_file(path, tokenizer=tokenizer, method="reinforcement", grader_fields=ItemFields(GRADER))
    found = {error.code: [(i.line, i.field) for i in error.first] for error in report.training.errors}
    assert found == {
        "message_missing_key": [(6, "messages[1].content")],
        "invalid_prompt": [(4, "messages")],
        "missing_grader_field": [(8, "answer")],
    }
    assert report.training.n_valid_examples == 7
    error = report.blocking_error()
    assert error is not None and error.line == 4 and not report.ok


def test_the_job_check_and_the_data_check_name_the_same_missing_field(tmp_path: Path) -> None:
    from openft.services.reinforcement_files import ReinforcementFileError, check_reinforcement_file

    lines = prompt_lines(10)
    del lines[4]["answer"]
    path = write(tmp_path / "prompts.jsonl", lines)
    report = check_file(path, method="reinforcement", grader_fields=ItemFields(GRADER))
    issue = report.training.errors[0].first[0]
    try:
        check_reinforcement_file(path, "training", "file-x", GRADER)
    except ReinforcementFileError as exc:
        assert f"Input file file-x line 5: {issue.message}" in exc.message
    else:
        raise AssertionError("the job's file check accepted a line without the grader's field")


def test_the_prompt_lint(tmp_path: Path, tokenizer: Any) -> None:
    lines = prompt_lines(10)
    lines[6] = json.loads(json.dumps(lines[1]))  # the same prompt again
    lines[8]["answer"] = " "
    lines[9]["messages"][1]["content"] = "x" * 300  # the byte tokenizer: one token per byte
    path = write(tmp_path / "prompts.jsonl", lines)
    report = check_file(
        path,
        tokenizer=tokenizer,
        context_length=400,
        method="reinforcement",
        grader_fields=ItemFields(GRADER),
        reinforcement=PLAN,
    )
    assert report.ok
    assert {finding.code: finding.lines for finding in report.lint} == {
        "duplicate_prompts": (7,),
        "empty_grader_reference": (9,),
        "prompt_leaves_little_room": (10,),
    }


def test_a_chat_file_without_any_answer_is_read_as_prompts(tmp_path: Path, tokenizer: Any) -> None:
    path = write(tmp_path / "prompts.jsonl", prompt_lines(10))
    report = check_file(path, tokenizer=tokenizer)
    assert report.method == "reinforcement" and report.ok
    assert report.training.errors == ()
    supervised = check_file(path, tokenizer=tokenizer, method="supervised")
    assert [error.code for error in supervised.training.errors] == ["example_missing_assistant_message"]
