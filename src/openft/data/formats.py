"""The training-data formats and how one example's format is recognised."""

from __future__ import annotations

from typing import Any, Literal

FileFormat = Literal["chat", "prompt_completion", "preference", "prompt"]
# What a file trains: "supervised" (chat or prompt/completion), "dpo" (preference), "reinforcement"
# (prompts: chat messages ending before the answer, graded by the job's grader).
Method = Literal["supervised", "dpo", "reinforcement"]
METHODS: tuple[Method, ...] = ("supervised", "dpo", "reinforcement")

FORMAT_LABELS: dict[FileFormat, str] = {
    "chat": "chat messages",
    "prompt_completion": "prompt/completion pairs",
    "preference": "preference (DPO) data",
    "prompt": "reinforcement prompts",
}

# The spec of late 2024 spelled the DPO outputs `*_completion`; the guide spells them `*_output`.
PREFERRED_KEYS = ("preferred_output", "preferred_completion")
NON_PREFERRED_KEYS = ("non_preferred_output", "non_preferred_completion")
_PREFERENCE_KEYS = frozenset(("input", *PREFERRED_KEYS, *NON_PREFERRED_KEYS))

UNEXPECTED_FORMAT = "Unexpected file format, expected either prompt/completion pairs or chat messages."


def method_of(file_format: FileFormat | None) -> Method:
    """The method a file of this format trains with when none is named."""
    if file_format == "preference":
        return "dpo"
    return "reinforcement" if file_format == "prompt" else "supervised"


def detect_format(example: dict[str, Any]) -> FileFormat | None:
    """The format an example object is written in, judged by its top-level keys alone (a prompt line
    looks like a chat example: the method, named or inferred from the whole file, tells them apart)."""
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
