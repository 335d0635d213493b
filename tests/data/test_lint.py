# ruff: noqa: E501  (expected messages are compared whole)
"""One fixture per lint finding: each names how many examples, which lines, and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openft.data import LintFinding, check_file, lint_columns
from openft.data.stats import Histogram

FIXTURES = Path(__file__).parent / "fixtures"

ADVICE = {
    "duplicate_examples": "Remove the copies: each one is trained on again every epoch and pulls the model towards it.",
    "near_duplicate_examples": "Remove the near-copies, or vary them if they are meant to teach different things.",
    "validation_leakage": "Remove them from the validation file: the model has seen them, so the validation loss would look better than the model really is.",
    "conflicting_answers": "Make the answers to the same prompt consistent, or add to the prompt whatever decides between them.",
    "imbalanced_answers": "Balance the answers (fewer of the common one, more of the others), or the model may learn to give the common answer whatever the prompt.",
    "missing_system_prompt": "Give every example the same system message (the one you will use in production), or none.",
    "several_system_prompts": "Use one system prompt throughout, the one you will deploy with; the lines shown are the first use of each.",
    "mixed_answer_formats": "Answer in one format throughout, so the model knows which one to produce.",
    "trailing_whitespace": "Strip the answers: the model learns to emit the whitespace too.",
    "mixed_scripts": "If the model should answer in one language, translate or remove the others; if languages should follow the user, make sure each is well represented.",
    "empty_answers": 'Write the answer, or set "weight": 0 on that message if it should not be learned.',
    "short_answers": "Check that they are complete and intended; outliers often come from a broken export.",
    "long_answers": "Check that they are complete and intended; outliers often come from a broken export.",
    "identical_preference_outputs": "Remove them or write a worse non-preferred output: a pair of equal answers teaches nothing and only dilutes the others.",
    "whitespace_only_preference": "Make the outputs differ in content: otherwise the model learns to prefer or avoid trailing spaces and newlines.",
    "contradicting_preferences": "Decide which output is better for each prompt and keep only that pair: contradicting pairs cancel each other out.",
    "preference_length_bias": "Add pairs where the shorter output is the preferred one: otherwise the model may learn to answer at length rather than what you prefer.",
}

# fixture (and finding) name -> (file, n_examples, lines, message)
EXPECTED = {
    "duplicate_examples": ("training", 1, (11,), "1 example(s) are exact copies of an earlier line."),
    "near_duplicate_examples": (
        "training",
        1,
        (11,),
        "1 example(s) repeat an earlier example once case, spacing and punctuation are ignored.",
    ),
    "validation_leakage": (
        "validation",
        2,
        (1, 3),
        "2 validation example(s) also appear in the training file (compared ignoring case, spacing and punctuation).",
    ),
    "conflicting_answers": (
        "training",
        2,
        (1, 11),
        "1 prompt(s) get different answers in different examples (2 examples); their answers agree with the most common one 50% of the time.",
    ),
    "imbalanced_answers": (
        "training",
        8,
        (1, 2, 4, 5, 7),
        'One answer dominates: "positive" 8 (67%), "negative" 3 (25%), "neutral" 1 (8%) of 12 examples.',
    ),
    "missing_system_prompt": ("training", 2, (4, 9), "2 example(s) have no system message while 8 have one."),
    "several_system_prompts": (
        "training",
        10,
        (1, 6),
        '2 different system prompts are used: "Marv is a factual chatbot that is also sarcastic." (5); "You are Marv, a sarcastic but factual assistant." (5).',
    ),
    "mixed_answer_formats": (
        "training",
        2,
        (3, 7),
        "2 answer(s) are JSON and 8 are prose; the lines shown are JSON.",
    ),
    "trailing_whitespace": ("training", 2, (2, 5), "2 answer(s) end with spaces or newlines."),
    "mixed_scripts": (
        "training",
        1,
        (10,),
        "Answers are written in several scripts (latin 9, cyrillic 1); the lines shown are not in latin.",
    ),
    "empty_answers": ("training", 2, (6, 8), "2 assistant answer(s) are empty or whitespace only."),
    "short_answers": (
        "training",
        1,
        (4,),
        "1 answer(s) are over 10× shorter than the median answer (58 characters).",
    ),
    "long_answers": (
        "training",
        1,
        (9,),
        "1 answer(s) are over 10× longer than the median answer (60 characters).",
    ),
    "identical_preference_outputs": (
        "training",
        2,
        (3, 7),
        "2 example(s) have the same preferred and non-preferred output.",
    ),
    "whitespace_only_preference": (
        "training",
        2,
        (5, 9),
        "2 example(s) have preferred and non-preferred outputs that differ only in trailing whitespace.",
    ),
    "contradicting_preferences": (
        "training",
        2,
        (2, 10),
        "2 example(s) prefer one output for a prompt where another example prefers the other.",
    ),
    "preference_length_bias": (
        "training",
        9,
        (1, 2, 3, 5, 6),
        "Preferred outputs are 2.2× as long as non-preferred ones on average (76 vs 35 characters), and longer in 90% of pairs.",
    ),
}


def test_every_finding_has_a_fixture() -> None:
    assert {path.stem for path in (FIXTURES / "lint").glob("*.jsonl")} == set(EXPECTED) == set(ADVICE)


@pytest.fixture(params=["in memory", "spilled to disk"])
def storage(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each lint test twice: as a small file is linted, and as a large one is (columns spilled to disk
    every 3 rows, hashes grouped in partitions of about 2 rows, so copies and conflicts span them)."""
    if request.param == "spilled to disk":
        monkeypatch.setattr(lint_columns, "CHUNK_ROWS", 3)
        monkeypatch.setattr(lint_columns, "PARTITION_ROWS", 2)
    return str(request.param)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_gives_exactly_its_finding(name: str, tokenizer: Any, storage: str) -> None:
    path = FIXTURES / "lint" / f"{name}.jsonl"
    if name == "validation_leakage":
        report = check_file(FIXTURES / "marv.jsonl", tokenizer=tokenizer, validation_path=path)
    else:
        report = check_file(path, tokenizer=tokenizer)
    file, n_examples, lines, message = EXPECTED[name]
    assert report.lint == (LintFinding(name, file, n_examples, lines, message, ADVICE[name]),)
    assert report.training.errors == ()  # lint findings are warnings: the files stay valid


def test_lint_can_be_turned_off(tokenizer: Any) -> None:
    report = check_file(FIXTURES / "lint" / "duplicate_examples.jsonl", tokenizer=tokenizer, lint=False)
    assert report.lint == ()


def test_spilled_columns_read_back_in_order_and_by_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lint_columns, "CHUNK_ROWS", 4)
    column = lint_columns.SpilledColumn("q")
    for value in range(10):
        column.append(value * 7 - 20)
        if len(column.buffer) >= lint_columns.CHUNK_ROWS:
            column.spill()
    assert (column.n_spilled, len(column)) == (8, 10)
    assert [len(chunk) for chunk in column.chunks()] == [4, 4, 2]
    assert column.values().tolist() == [v * 7 - 20 for v in range(10)]
    assert column.take(np.array([0, 5, 9])).tolist() == [-20, 15, 43]
    groups = list(lint_columns.partitions(column, count=3))
    assert sorted(i for _, indices, _ in groups for i in indices.tolist()) == list(range(10))
    for keys, indices, _ in groups:
        assert len({k % 3 for k in keys.tolist()}) <= 1  # one partition holds one residue
        assert indices.tolist() == sorted(indices.tolist())  # file order kept
    kept = [i for _, indices, _ in lint_columns.partitions(column, count=2, skip_key=-20) for i in indices]
    assert sorted(kept) == list(range(1, 10))  # row 0 holds the skipped key
    column.close()


@pytest.mark.parametrize("lengths", [[5], [1, 9], [3, 1, 2], [4, 4, 1, 10], [7, 7, 7, 2, 100, 3]])
def test_the_answer_length_median_is_numpys_median(lengths: list[int]) -> None:
    histogram = Histogram()
    for length in lengths:
        histogram.add(length)
    summary = histogram.distribution()
    assert summary is not None and summary.median == float(np.median(lengths))
