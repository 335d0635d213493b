"""Answer metrics: small pure functions `(answer, reference) -> score in [0, 1]`, and their registry.

Adding a metric is one function and one entry in `METRICS`. Metrics that need a parameter (a pattern,
a text) are factories, named on the command line as `regex:PATTERN` or `contains:TEXT`.

    exact_match         answer == reference, after stripping surrounding whitespace
    normalized_match    equal after lower-casing, dropping punctuation and collapsing whitespace
    token_f1            SQuAD-style F1 of the two bags of normalized words
    contains_reference  the normalized reference occurs in the normalized answer
    json_valid          the answer parses as JSON
    json_field_match    share of the reference object's top-level fields the answer has equal
    regex:PATTERN       the answer matches PATTERN somewhere (re.search); the reference is not used
    contains:TEXT       TEXT occurs in the answer (case-sensitive); the reference is not used
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Metric = Callable[[str, str], float]

_NO_JSON = object()


def exact_match(answer: str, reference: str) -> float:
    return float(answer.strip() == reference.strip())


def normalize_text(text: str) -> str:
    """Lower case, punctuation (ASCII and Unicode) removed, whitespace runs collapsed to one space."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if _is_punctuation(char) else char for char in text)
    return " ".join(kept.split())


def normalized_match(answer: str, reference: str) -> float:
    return float(normalize_text(answer) == normalize_text(reference))


def token_f1(answer: str, reference: str) -> float:
    """Harmonic mean of word precision and recall; two empty texts agree fully (1.0)."""
    answer_words, reference_words = normalize_text(answer).split(), normalize_text(reference).split()
    if not answer_words or not reference_words:
        return float(answer_words == reference_words)
    n_common = sum((Counter(answer_words) & Counter(reference_words)).values())
    if n_common == 0:
        return 0.0
    precision, recall = n_common / len(answer_words), n_common / len(reference_words)
    return 2 * precision * recall / (precision + recall)


def contains_reference(answer: str, reference: str) -> float:
    normalized_reference = normalize_text(reference)
    if not normalized_reference:
        return 1.0
    # Padded with spaces so that "cat" is not found inside "category".
    return float(f" {normalized_reference} " in f" {normalize_text(answer)} ")


def json_valid(answer: str, reference: str) -> float:
    return float(parse_json(answer) is not _NO_JSON)


def json_field_match(answer: str, reference: str) -> float:
    """Share of the reference object's top-level fields that the answer object holds with equal values.

    0 when the answer is not a JSON object. A reference that is not a JSON object is compared whole:
    1 when the answer's JSON equals it, else 0.
    """
    expected, found = parse_json(reference), parse_json(answer)
    if not isinstance(expected, dict):
        return float(expected is not _NO_JSON and found == expected)
    if not isinstance(found, dict):
        return 0.0
    if not expected:
        return float(not found)
    return sum(key in found and found[key] == value for key, value in expected.items()) / len(expected)


def regex(pattern: str) -> Metric:
    """1 when the answer matches `pattern` anywhere (re.search); raises re.error for a bad pattern."""
    compiled = re.compile(pattern)

    def matches(answer: str, reference: str) -> float:
        return float(compiled.search(answer) is not None)

    return matches


def contains(text: str) -> Metric:
    """1 when `text` occurs in the answer (case-sensitive)."""

    def has_text(answer: str, reference: str) -> float:
        return float(text in answer)

    return has_text


METRICS: dict[str, Metric] = {
    "exact_match": exact_match,
    "normalized_match": normalized_match,
    "token_f1": token_f1,
    "contains_reference": contains_reference,
    "json_valid": json_valid,
    "json_field_match": json_field_match,
}
# Metrics built from a parameter: `name:parameter` on the command line.
METRIC_FACTORIES: dict[str, Callable[[str], Metric]] = {"regex": regex, "contains": contains}
TEXT_METRICS = ("exact_match", "normalized_match", "token_f1")
JSON_METRICS = ("json_valid", "json_field_match")


def get_metric(name: str) -> Metric:
    """The metric a name means: a registry name, or `regex:PATTERN` / `contains:TEXT`."""
    if name in METRICS:
        return METRICS[name]
    kind, colon, parameter = name.partition(":")
    if colon and kind in METRIC_FACTORIES:
        try:
            return METRIC_FACTORIES[kind](parameter)
        except re.error as exc:
            raise ValueError(
                f"metric {name!r}: the pattern is not a valid regular expression ({exc})"
            ) from None
    known = ", ".join([*METRICS, *(f"{kind}:..." for kind in METRIC_FACTORIES)])
    raise ValueError(f"unknown metric {name!r}; known metrics: {known}")


def split_metric_names(specs: Iterable[str]) -> list[str]:
    """Metric names from command-line values: comma-separated lists, except that a `regex:`/`contains:`
    value is taken whole (its pattern may hold commas)."""
    names: list[str] = []
    for spec in specs:
        if spec.partition(":")[0] in METRIC_FACTORIES:
            names.append(spec)
        else:
            names += [name.strip() for name in spec.split(",") if name.strip()]
    for name in names:
        get_metric(name)  # fail early, before any model runs
    return list(dict.fromkeys(names))


def default_metric_names(references: Sequence[str]) -> list[str]:
    """The text metrics, plus the JSON ones when every reference is a JSON object."""
    names = list(TEXT_METRICS)
    if references and all(isinstance(parse_json(reference), dict) for reference in references):
        names += JSON_METRICS
    return names


def metric_label(name: str) -> str:
    """How a metric is named in tables and headlines: `exact_match` -> `exact match`."""
    return name if ":" in name else name.replace("_", " ")


def parse_json(text: str) -> Any:
    """The JSON value of `text`, or the `_NO_JSON` marker (JSON's null is a value like any other)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _NO_JSON


def _is_punctuation(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char).startswith("P")
