"""The rules for one chat example: the cookbook checker's error classes, corrected, plus job-time rules.

Corrections to the cookbook script: `tool` and `developer` roles, `tool_calls` and `tool_call_id` are
valid; an assistant message that calls a tool or function may have null content; `weight` must be 0 or 1
and only assistant messages carry it. Added rules that OpenAI enforces when a job starts: at least one
trained assistant message, tool messages answer a call made earlier in the example, and `arguments` hold
a JSON object. An empty assistant answer ("") is allowed here; the lint warns about it.
"""

from __future__ import annotations

import json
from typing import Any

from openft.data.formats import json_type_name
from openft.data.issues import Issue
from openft.data.validate_tools import (
    Findings,
    check_function,
    check_tool_answer,
    check_tool_calls,
    check_tools,
)

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_ALLOWED_KEYS = {
    "system": frozenset(("role", "content", "name")),
    "developer": frozenset(("role", "content", "name")),
    "user": frozenset(("role", "content", "name")),
    "assistant": frozenset(("role", "content", "name", "tool_calls", "function_call", "weight", "refusal")),
    "tool": frozenset(("role", "content", "tool_call_id")),
    "function": frozenset(("role", "content", "name")),
}
_PART_TYPES = {"assistant": ("text", "refusal"), "user": ("text",)}
MISSING_ROLE = "Discriminator 'role' is missing in value"
_TEXT_ROLES = frozenset(("system", "developer", "user"))


def validate_chat(
    example: dict[str, Any], line: int, *, prefix: str = "", needs_answer: bool = True
) -> list[Issue]:
    """Every problem in one chat example (an empty list when it is valid).

    `needs_answer=False` checks the prompt of a preference example, whose answers live outside it.
    """
    found = Findings(line, prefix)
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        found.add(
            "missing_messages_list",
            '"messages" must be a non-empty list of messages, such as '
            '[{"role": "user", ...}, {"role": "assistant", ...}].',
            path="messages",
        )
        return found.issues
    check_tools(example, found)
    call_ids: set[str] = set()
    n_assistant = n_trained = 0
    for index, message in enumerate(messages):
        # Most messages are a role and a text: accept those at once, without the full checks.
        if type(message) is dict and len(message) == 2 and type(message.get("content")) is str:
            role = message.get("role")
            if role == "assistant":
                n_assistant += 1
                n_trained += 1
                continue
            if role in _TEXT_ROLES and message["content"]:
                continue
        if not isinstance(message, dict):
            found.add(
                "invalid_field_type",
                f"a message must be an object, not a JSON {json_type_name(message)}.",
                index,
            )
            continue
        role = _check_role(message, index, found)
        if role is None:
            continue
        _check_keys(message, role, index, found)
        if "name" in message and not isinstance(message["name"], str):
            found.add("invalid_field_type", '"name" must be a string.', index, ".name")
        if role == "assistant":
            n_assistant += 1
            n_trained += _check_assistant(message, index, found, call_ids)
        else:
            _check_content(message, role, index, found)
        if role == "tool":
            check_tool_answer(message, index, found, call_ids)
        elif role == "function" and not isinstance(message.get("name"), str):
            found.add(
                "message_missing_key", 'a function message needs the "name" of the function.', index, ".name"
            )
    if not needs_answer:
        return found.issues
    if n_assistant == 0:
        found.add(
            "example_missing_assistant_message",
            "the example has no assistant message; add the answer the model should learn.",
        )
    elif n_trained == 0:
        found.add(
            "no_trained_assistant_message",
            'every assistant message has "weight": 0, so nothing would be trained; set "weight": 1 on one.',
        )
    return found.issues


def _check_role(message: dict[str, Any], index: int, found: Findings) -> str | None:
    if "role" not in message:
        found.add("message_missing_key", f'{MISSING_ROLE}: add "role" to the message.', index, ".role")
        return None
    role = message["role"]
    if role not in ROLES:
        found.add(
            "unrecognized_role",
            f"role {json.dumps(role)} is not one of {', '.join(ROLES)}.",
            index,
            ".role",
        )
        return None
    return str(role)


def _check_keys(message: dict[str, Any], role: str, index: int, found: Findings) -> None:
    extra = [key for key in message if key not in _ALLOWED_KEYS[role]]
    if not extra:
        return
    names = ", ".join(json.dumps(key) for key in extra)
    why = " (only assistant messages carry a weight)" if "weight" in extra else ""
    found.add(
        "message_unrecognized_key",
        f"{_a(role)} {role} message does not take {names}{why}; "
        f"allowed: {', '.join(sorted(_ALLOWED_KEYS[role]))}.",
        index,
        f".{extra[0]}",
    )


def _check_content(message: dict[str, Any], role: str, index: int, found: Findings) -> None:
    if "content" not in message:
        found.add("message_missing_key", f'{_a(role)} {role} message needs "content".', index, ".content")
        return
    content = message["content"]
    if isinstance(content, str) and content:
        return
    if isinstance(content, list) and content:
        _check_parts(content, _PART_TYPES.get(role, ("text",)), index, found)
        return
    shown = '""' if content == "" else f"a JSON {json_type_name(content)}"
    found.add(
        "missing_content",
        f'{_a(role)} {role} message needs text "content", not {shown}.',
        index,
        ".content",
    )


def _check_parts(parts: list[Any], allowed: tuple[str, ...], index: int, found: Findings) -> None:
    for part_index, part in enumerate(parts):
        path = f".content[{part_index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            shown = json.dumps(kind) if kind is not None else "a part without a type"
            found.add(
                "invalid_content_part",
                f"content part {shown} is not supported; openft trains text models, so use "
                f"{' or '.join(repr(t) for t in allowed)} parts.",
                index,
                path,
            )
        elif not isinstance(part.get(kind), str):
            found.add("invalid_content_part", f'a "{kind}" part needs a string "{kind}".', index, path)


def _check_assistant(message: dict[str, Any], index: int, found: Findings, call_ids: set[str]) -> int:
    """Check an assistant message; return 1 when it is trained, 0 when its weight is 0."""
    calls_tool = "tool_calls" in message and message["tool_calls"] is not None
    if calls_tool:
        check_tool_calls(message["tool_calls"], index, found, call_ids)
    calls_function = "function_call" in message and message["function_call"] is not None
    if calls_function:
        check_function(message["function_call"], index, found, ".function_call")
    content = message.get("content")
    if isinstance(content, list):
        _check_parts(content, _PART_TYPES["assistant"], index, found)
    elif content is None and not (calls_tool or calls_function):
        if "content" in message:
            found.add(
                "missing_content",
                'an assistant message without a tool call needs "content".',
                index,
                ".content",
            )
        else:
            found.add(
                "message_missing_key",
                'an assistant message needs "content" or "tool_calls".',
                index,
                ".content",
            )
    elif content is not None and not isinstance(content, str):
        found.add(
            "missing_content",
            f'"content" must be text, not a JSON {json_type_name(content)}.',
            index,
            ".content",
        )
    weight = message.get("weight", 1)
    if isinstance(weight, bool) or weight not in (0, 1):
        found.add("invalid_weight", f'"weight" must be 0 or 1, not {json.dumps(weight)}.', index, ".weight")
        return 1
    return 1 if weight else 0


def _a(role: str) -> str:
    return "an" if role == "assistant" else "a"
