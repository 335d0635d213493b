"""The `string_check` grader's comparison: exact, negated, substring and case-blind substring. Pure."""

from __future__ import annotations

STRING_CHECK_OPERATIONS = ("eq", "ne", "like", "ilike")


def string_check(output: str, reference: str, operation: str) -> bool:
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
