"""The rules for one reinforcement prompt line, shared by the data checker, the job's file check and the
recipe: `{"messages": [...], "tools"?: [...], <fields the grader reads>}`.

The messages end before the answer. A final assistant message is allowed and dropped (the grader, not a
written answer, says what is good); what is left must be a prompt a model can answer: not empty, and not
opened by the assistant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from openft.data.issues import Issue
from openft.data.validate_chat import validate_chat

DROPPED_ANSWER = "dropped: the grader, not a written answer, says what is good"


def prompt_messages(messages: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    """The messages a reinforcement job samples an answer after: a final assistant message is dropped."""
    if messages and messages[-1].get("role") == "assistant":
        return messages[:-1]
    return messages


def has_final_answer(example: Mapping[str, Any]) -> bool:
    messages = example["messages"]
    return bool(messages) and messages[-1].get("role") == "assistant"


def validate_prompt(example: dict[str, Any], line: int) -> list[Issue]:
    """Every problem in one prompt line (an empty list when a reinforcement job can sample from it)."""
    issues = validate_chat(example, line, needs_answer=False)
    if issues:
        return issues
    messages = prompt_messages(example["messages"])
    if not messages:
        return [
            Issue(
                "invalid_prompt",
                line,
                "the only message is the assistant's, which is dropped; add the user's prompt before it.",
                field="messages",
            )
        ]
    if messages[0].get("role") == "assistant":
        return [
            Issue(
                "invalid_prompt",
                line,
                "the first message is from the assistant: put a system or user message first.",
                message_index=0,
                field="messages[0].role",
            )
        ]
    return []


class GraderFields(Protocol):
    """What a grader asks of each prompt line (openft.graders.item_fields.ItemFields builds it)."""

    def issues(self, item: dict[str, Any], line: int) -> list[Issue]:
        """A `missing_grader_field` issue for a line that lacks a field the grader reads."""
        ...

    def empty_reference(self, item: Mapping[str, Any]) -> bool:
        """Whether a field the grader compares answers with is empty in this line."""
        ...
