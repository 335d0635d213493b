"""The three training-data formats and how one example's format is recognised."""

from __future__ import annotations

from typing import Any, Literal

FileFormat = Literal["chat", "prompt_completion", "preference"]

FORMAT_LABELS: dict[FileFormat, str] = {
    "chat": "chat messages",
    "prompt_completion": "prompt/completion pairs",
    "preference": "preference (DPO) data",
}

# The spec of late 2024 spelled the DPO outputs `*_completion`; the guide spells them `*_output`.
PREFERRED_KEYS = ("preferred_output", "preferred_completion")
NON_PREFERRED_KEYS = ("non_preferred_output", "non_preferred_completion")
_PREFERENCE_KEYS = frozenset(("input", *PREFERRED_KEYS, *NON_PREFERRED_KEYS))

UNEXPECTED_FORMAT = "Unexpected file format, expected either prompt/completion pairs or chat messages."


def detect_format(example: dict[str, Any]) -> FileFormat | None:
    """The format an example object is written in, judged by its top-level keys alone."""
    if "messages" in example:
        return "chat"
    if not _PREFERENCE_KEYS.isdisjoint(example):
        return "preference"
    if "prompt" in example or "completion" in example:
        return "prompt_completion"
    return None


def json_type_name(value: Any) -> str:
    """How JSON (not Python) names the type of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
