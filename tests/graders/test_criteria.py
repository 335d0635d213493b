"""The Evals API's graders, templates and item rows: pure functions against hand-computed values."""

from __future__ import annotations

import math
import random

import pytest

from openft.evals.items import ItemsError, parse_jsonl, schema_problem
from openft.graders import text_similarity as similarity
from openft.graders.criteria import GraderConfigError, grade_items, normalize_criterion
from openft.graders.string_check import compare as string_check
from openft.graders.templates import TemplateError, check_namespaces, references, render

CAT, CAT_MAT = "the cat sat", "The cat sat on the mat."


@pytest.mark.parametrize(
    ("operation", "output", "reference", "passed"),
    [
        ("eq", "Paris", "Paris", True),
        ("eq", "Paris", "paris", False),
        ("ne", "Paris", "London", True),
        ("ne", "Paris", "Paris", False),
        ("like", "It is Paris.", "Paris", True),
        ("like", "It is paris.", "Paris", False),
        ("ilike", "It is PARIS.", "paris", True),
        ("ilike", "It is Rome.", "paris", False),
    ],
)
def test_string_check(operation: str, output: str, reference: str, passed: bool) -> None:
    assert string_check(output, reference, operation) is passed


def lcs_by_table(a: str, b: str) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def test_the_bit_parallel_lcs_agrees_with_the_textbook_table() -> None:
    rng = random.Random(0)
    for _ in range(300):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 70)))
        b = "".join(rng.choice("abc") for _ in range(rng.randint(0, 70)))
        assert similarity.lcs_length(a, b) == lcs_by_table(a, b), (a, b)


@pytest.mark.parametrize(
    ("metric", "output", "reference", "score"),
    [
        ("fuzzy_match", "Pari", "Paris", 8 / 9),
        ("fuzzy_match", "kitten", "sitting", 8 / 13),  # LCS "ittn"
        ("fuzzy_match", "", "", 1.0),
        ("fuzzy_match", "abc", "xyz", 0.0),
        ("rouge_1", CAT, CAT_MAT, 2 / 3),  # P = 3/3, R = 3/6
        ("rouge_2", CAT, CAT_MAT, 2 * 1 * 0.4 / 1.4),  # P = 2/2, R = 2/5
        ("rouge_3", CAT, CAT_MAT, 2 * 1 * 0.25 / 1.25),  # P = 1/1, R = 1/4
        ("rouge_4", CAT, CAT_MAT, 0.0),
        ("rouge_l", CAT, CAT_MAT, 2 / 3),
        ("rouge_l", "mat the on", CAT_MAT, 2 * (2 / 3) * (2 / 6) / (2 / 3 + 2 / 6)),  # LCS "the on"
        ("gleu", CAT, CAT_MAT, 1 / 3),  # 6 matches; 6 output, 18 reference n-grams
        ("bleu", CAT, CAT_MAT, math.exp(1 - 6 / 3)),  # every (smoothed) precision 1; brevity e^-1
        ("bleu", CAT_MAT, CAT_MAT, 1.0),
        ("bleu", "dogs bark", CAT_MAT, 0.0),
    ],
)
def test_similarity_metrics(metric: str, output: str, reference: str, score: float) -> None:
    assert similarity.METRICS[metric](output, reference) == pytest.approx(score)


def test_bleu_smooths_missing_higher_order_matches() -> None:
    # "the cat" vs "the cat sat on the mat": p1 = 2/2, p2 = (1+1)/(1+1), p3 = p4 = (0+1)/(0+1); BP e^(1-3)
    assert similarity.bleu("the cat", CAT_MAT) == pytest.approx(math.exp(1 - 6 / 2))
    # "cat the" vs the same: p1 = 1, p2 = (0+1)/(1+1) = 1/2, p3 = p4 = 1; BP e^-2
    assert similarity.bleu("cat the", CAT_MAT) == pytest.approx(0.5**0.25 * math.exp(-2))


def test_templates_render_nested_fields_and_json_values() -> None:
    namespaces = {"item": {"a": {"b": "deep"}, "n": 3, "tags": ["x", "y"], "obj": {"k": [1]}}, "sample": None}

    assert render("{{item.a.b}} / {{ item.n }} / {{item.tags.1}} / {{item.obj}}", namespaces) == (
        'deep / 3 / y / {"k": [1]}'
    )
    assert references("{{item.a}} {{sample.output_text}} {{item.a}}") == ["item.a", "sample.output_text"]
    assert render("no references {here}", namespaces) == "no references {here}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{item.a.c}}", "`item.a` has no field `c` (referenced as {{item.a.c}})."),
        ("{{item.tags.5}}", "`item.tags` has no field `5`"),
        ("{{sample.output_text}}", "The template references {{sample.output_text}} but there is no `sample`"),
    ],
)
def test_missing_fields_are_named(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as raised:
        render(template, {"item": {"a": {"b": 1}, "tags": []}, "sample": None})
    assert raised.value.message.startswith(message)


def test_only_item_and_sample_namespaces_are_accepted() -> None:
    check_namespaces("{{item.x}} {{sample.output_text}}")
    with pytest.raises(TemplateError, match="not in a known namespace"):
        check_namespaces("{{items.x}}")
    with pytest.raises(TemplateError, match="must name a field"):
        check_namespaces("{{item}}")


def test_grading_an_item() -> None:
    check = normalize_criterion(
        {
            "type": "string_check",
            "name": "c",
            "input": "{{sample.output_text}}",
            "reference": "{{item.a}}",
            "operation": "ilike",
        }
    )
    similar = normalize_criterion(
        {
            "type": "text_similarity",
            "name": "s",
            "input": "{{sample.output_text}}",
            "reference": "{{item.a}}",
            "evaluation_metric": "fuzzy_match",
            "pass_threshold": 0.9,
        }
    )
    [results] = grade_items([check, similar], [({"output_text": "paris!"}, {"a": "Paris"})])
    assert isinstance(results, list)
    assert results[0].passed and results[0].score == 1.0
    result = results[1]
    assert (result.name, result.type, result.passed) == ("s", "text_similarity", False)
    assert result.score == pytest.approx(2 * 4 / 11)


def test_every_grader_type_is_a_criterion_with_its_pass_rule() -> None:
    python = normalize_criterion(
        {
            "type": "python",
            "name": "p",
            "source": "def grade(sample, item):\n    return len(sample['output_text'])\n",
            "pass_threshold": 3,
        }
    )
    multi = normalize_criterion(
        {
            "type": "multi",
            "name": "m",
            "calculate_output": "a",
            "graders": {
                "a": {
                    "type": "string_check",
                    "name": "a",
                    "input": "{{sample.output_text}}",
                    "reference": "{{item.a}}",
                    "operation": "eq",
                }
            },
        }
    )
    results = grade_items(
        [python, multi], [({"output_text": "Paris"}, {"a": "Paris"}), ({"output_text": "No"}, {"a": "Paris"})]
    )
    first, second = results
    assert isinstance(first, list) and isinstance(second, list)
    assert [(r.score, r.passed) for r in first] == [(5.0, True), (1.0, True)]  # multi: default threshold 0.5
    assert [(r.score, r.passed) for r in second] == [(2.0, False), (0.0, False)]


def test_an_item_without_a_field_a_criterion_reads_is_an_error() -> None:
    check = normalize_criterion(
        {
            "type": "string_check",
            "name": "c",
            "input": "{{sample.output_text}}",
            "reference": "{{item.a}}",
            "operation": "eq",
        }
    )
    [result] = grade_items([check], [({"output_text": "x"}, {"b": 1})])
    assert isinstance(result, TemplateError) and "no field `a`" in result.message


@pytest.mark.parametrize(
    ("criterion", "field", "message"),
    [
        ({"type": "python", "name": "p", "source": ""}, "source", "source must not be empty"),
        ({"type": "string_check", "name": "c", "input": "x", "reference": "y", "operation": "regex"},
         "operation", "operation must be one of eq, ne, like, ilike"),
        ({"type": "text_similarity", "name": "s", "input": "x", "reference": "y",
          "evaluation_metric": "bleu"}, "pass_threshold", "Missing required parameter: 'pass_threshold'"),
        ({"type": "string_check", "name": "c", "input": "{{output}}", "reference": "y", "operation": "eq"},
         "input", "The template reference {{output}} is not in a known namespace"),
    ],
)  # fmt: skip
def test_bad_criteria_are_refused(criterion: dict, field: str, message: str) -> None:
    with pytest.raises(GraderConfigError) as raised:
        normalize_criterion(criterion)
    assert raised.value.field == field and raised.value.message.startswith(message)


def test_jsonl_rows_wrapped_or_bare() -> None:
    lines = [b'{"item": {"q": 1}, "sample": {"output_text": "a"}}', b"", b'{"q": 2}', b'{"item": 3, "q": 4}']

    rows = parse_jsonl(lines, max_rows=10)

    assert [(r.item, r.sample, r.where) for r in rows] == [
        ({"q": 1}, {"output_text": "a"}, "line 1"),
        ({"q": 2}, None, "line 3"),
        ({"item": 3, "q": 4}, None, "line 4"),
    ]
    with pytest.raises(ItemsError, match=r"^line 2: not valid JSON"):
        parse_jsonl([b'{"q": 1}', b"q,a"], max_rows=10)
    with pytest.raises(ItemsError, match=r"^line 1: expected a JSON object, got list"):
        parse_jsonl([b"[1]"], max_rows=10)


def test_items_are_checked_against_the_schema_required_fields_and_types() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": ["integer", "null"]}},
              "required": ["q"]}  # fmt: skip

    assert schema_problem({"q": "x", "n": None, "extra": 1}, schema) is None
    assert schema_problem({"n": 1}, schema) == "missing required property 'q'"
    assert schema_problem({"q": 1}, schema) == "property 'q' should be of type string"
    assert schema_problem({"q": "x", "n": True}, schema) == "property 'n' should be of type integer or null"
