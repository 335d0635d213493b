"""The metric functions against hand-computed values, edge cases included."""

from __future__ import annotations

import pytest

from openft.comparison.metrics import (
    contains,
    contains_reference,
    default_metric_names,
    exact_match,
    get_metric,
    json_field_match,
    json_valid,
    metric_label,
    normalize_text,
    normalized_match,
    regex,
    split_metric_names,
    token_f1,
)


def test_exact_match_ignores_only_surrounding_whitespace() -> None:
    assert exact_match("Paris", "Paris") == 1.0
    assert exact_match("  Paris\n", "Paris") == 1.0
    assert exact_match("paris", "Paris") == 0.0
    assert exact_match("Paris.", "Paris") == 0.0
    assert exact_match("", "") == 1.0
    assert exact_match("", "Paris") == 0.0


def test_normalized_match_ignores_case_punctuation_and_spacing() -> None:
    assert normalize_text("  Hello,   WORLD!\n") == "hello world"
    assert normalized_match("the  capital is PARIS.", "The capital is Paris") == 1.0
    assert normalized_match("Paris", "Lyon") == 0.0
    # Unicode punctuation and case: « » and the full stop go, É folds to é.
    assert normalized_match("«ÉTÉ»", "été") == 1.0
    assert normalized_match("...", "") == 1.0


def test_token_f1_by_hand() -> None:
    # answer words: the cat sat (3); reference: the cat sat down (4); common 3.
    # precision 3/3, recall 3/4 -> F1 = 2 * 1 * 0.75 / 1.75 = 6/7
    assert token_f1("The cat sat.", "the cat sat down") == pytest.approx(6 / 7)
    # repeated words count once per occurrence: answer "a a a" vs "a b": common 1, p 1/3, r 1/2 -> 0.4
    assert token_f1("a a a", "a b") == pytest.approx(0.4)
    assert token_f1("dog", "cat") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("", "cat") == 0.0
    assert token_f1("cat", "") == 0.0
    assert token_f1("Straße Köln", "straße köln") == 1.0


def test_contains_reference_matches_whole_words() -> None:
    assert contains_reference("I think it is Paris, France.", "paris") == 1.0
    assert contains_reference("category", "cat") == 0.0
    assert contains_reference("anything", "") == 1.0


def test_json_valid() -> None:
    assert json_valid('{"a": 1}', "") == 1.0
    assert json_valid("[1, 2]", "") == 1.0
    assert json_valid("null", "") == 1.0
    assert json_valid("3", "") == 1.0
    assert json_valid("{'a': 1}", "") == 0.0
    assert json_valid("", "") == 0.0
    assert json_valid("[" * 100_000, "") == 0.0  # too deep for the parser: invalid, not a crash


def test_json_field_match_is_the_share_of_reference_fields() -> None:
    reference = '{"city": "Paris", "country": "France", "population": 2100000}'
    assert json_field_match('{"city": "Paris", "country": "France", "population": 2100000}', reference) == 1.0
    # 2 of 3 equal; extra answer fields do not count against it.
    assert json_field_match(
        '{"city": "Paris", "country": "France", "extra": true}', reference
    ) == pytest.approx(2 / 3)
    assert json_field_match('{"city": "paris"}', reference) == 0.0
    assert json_field_match("Paris", reference) == 0.0
    assert json_field_match('["city"]', reference) == 0.0  # not an object
    assert json_field_match("{}", "{}") == 1.0
    assert json_field_match('{"a": 1}', "{}") == 0.0
    # Non-object references compare whole.
    assert json_field_match("[1, 2]", "[1, 2]") == 1.0
    assert json_field_match("[1, 2]", "[2, 1]") == 0.0
    assert json_field_match("null", "null") == 1.0
    assert json_field_match("not json", "not json") == 0.0


def test_regex_and_contains_ignore_the_reference() -> None:
    assert regex(r"^\d{4}-\d{2}-\d{2}$")("2024-01-31", "whatever") == 1.0
    assert regex(r"^\d{4}$")("year 2024", "") == 0.0
    assert regex(r"\d{4}")("year 2024", "") == 1.0
    assert contains("Paris")("It is Paris.", "") == 1.0
    assert contains("Paris")("it is paris.", "") == 0.0


def test_metric_names_from_the_command_line() -> None:
    assert split_metric_names(["exact_match,token_f1", "exact_match", "regex:a,b"]) == [
        "exact_match",
        "token_f1",
        "regex:a,b",
    ]
    assert get_metric("regex:a,b")("xa,by", "") == 1.0
    assert get_metric("contains:héllo")("say héllo", "") == 1.0
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        split_metric_names(["exact_match,bleu"])
    with pytest.raises(ValueError, match="not a valid regular expression"):
        get_metric("regex:(")
    assert metric_label("exact_match") == "exact match"
    assert metric_label("regex:a_b") == "regex:a_b"


def test_default_metrics_add_the_json_ones_for_json_object_references() -> None:
    text = ["exact_match", "normalized_match", "token_f1"]
    assert default_metric_names(["Paris", "Oslo"]) == text
    assert default_metric_names(['{"a": 1}', '{"b": 2}']) == [*text, "json_valid", "json_field_match"]
    assert default_metric_names(['{"a": 1}', "Oslo"]) == text
    assert default_metric_names(["[1]", "2"]) == text
    assert default_metric_names([]) == text
