"""Tool calls in generated text, in the format the chat template renders: `<tool_call>{json}</tool_call>`.

The built-in template (openft.models.chat_template) writes assistant tool calls this way, so a model
fine-tuned on tool-call data answers in it; Qwen- and Hermes-style templates use the same tags. When
streaming, text from the first `<tool_call>` on is held back and sent as tool-call deltas at the end.
"""

from __future__ import annotations

from typing import Any

from openft.ids import random_base62
from openft.models.chat_template import parse_tool_calls
from openft.schemas.chat import FunctionCall, ToolCall

MARKER = "<tool_call>"


def split_tool_calls(text: str) -> tuple[str | None, list[ToolCall]]:
    """(content, tool calls) of a finished answer; content is None when the answer is only calls."""
    content, calls = parse_tool_calls(text)
    if not calls:
        return text, []
    return (content or None), [_tool_call(call) for call in calls]


def new_call_id() -> str:
    return "call_" + random_base62(24)


def _tool_call(call: dict[str, Any]) -> ToolCall:
    function = call["function"]
    return ToolCall(
        id=new_call_id(), function=FunctionCall(name=function["name"], arguments=function["arguments"])
    )


class ToolCallHold:
    """Streams plain text at once and holds back anything that is, or may become, a tool call."""

    def __init__(self) -> None:
        self._held = ""
        self._holding = False

    def feed(self, text: str) -> str:
        if self._holding:
            self._held += text
            return ""
        pending = self._held + text
        start = pending.find(MARKER)
        if start >= 0:
            self._holding, self._held = True, pending[start:]
            return pending[:start]
        keep = _partial_marker(pending)
        self._held = pending[len(pending) - keep :] if keep else ""
        return pending[: len(pending) - keep]

    def finish(self) -> tuple[str, list[ToolCall]]:
        """Text still to send and the calls found in what was held."""
        held, self._held = self._held, ""
        if not self._holding:
            return held, []
        content, calls = split_tool_calls(held)
        return (content or ""), calls


def _partial_marker(text: str) -> int:
    for size in range(min(len(MARKER) - 1, len(text)), 0, -1):
        if MARKER.startswith(text[-size:]):
            return size
    return 0
