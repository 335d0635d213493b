"""`string_check`: compare the rendered `input` with the rendered `reference`; reward 1 or 0."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openft.graders.outcome import ErrorFlags, Outcome
from openft.graders.sample import Sample, render_pair

OPERATIONS = ("eq", "ne", "like", "ilike")


def compare(output: str, reference: str, operation: str) -> bool:
    """eq/ne: exact (in)equality; like: `reference` occurs in `output`; ilike: the same ignoring case."""
    if operation == "eq":
        return output == reference
    if operation == "ne":
        return output != reference
    if operation == "like":
        return reference in output
    if operation == "ilike":
        return reference.lower() in output.lower()
    raise ValueError(f"unknown string_check operation {operation!r}")


def grade(grader: Mapping[str, Any], sample: Sample, item: Mapping[str, Any] | None) -> Outcome:
    rendered = render_pair(grader, sample, item)
    if isinstance(rendered, ErrorFlags):
        return Outcome(0.0, rendered)
    output, reference = rendered
    return Outcome(1.0 if compare(output, reference, grader["operation"]) else 0.0)
