"""The rules for tools in a chat example: tool calls, their arguments, tool answers, tool definitions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from openft.data.formats import json_type_name
from openft.data.issues import Issue
from openft.data.lines import decode_json, json_error_text


@dataclass
class Findings:
    """The issues of one example, collected as its checks run."""

    line: int
    prefix: str  # "input." for the prompt of a preference example
    issues: list[Issue] = field(default_factory=list)

    def add(self, code: str, message: str, index: int | None = None, path: str = "") -> None:
        where = f"{self.prefix}messages[{index}]{path}" if index is not None else f"{self.prefix}{path}"
        self.issues.append(Issue(code, self.line, message, index, where or None))


def check_tool_calls(calls: Any, index: int, found: Findings, call_ids: set[str]) -> None:
    if not isinstance(calls, list) or not calls:
        found.add("invalid_tool_call", '"tool_calls" must be a non-empty list.', index, ".tool_calls")
        return
    for call_index, call in enumerate(calls):
        path = f".tool_calls[{call_index}]"
        if not isinstance(call, dict):
            found.add("invalid_tool_call", "a tool call must be an object.", index, path)
            continue
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            found.add("invalid_tool_call", 'a tool call needs a string "id".', index, f"{path}.id")
        else:
            call_ids.add(call_id)
        if call.get("type", "function") != "function":
            found.add("invalid_tool_call", 'a tool call\'s "type" must be "function".', index, f"{path}.type")
        check_function(call.get("function"), index, found, f"{path}.function")


def check_function(function: Any, index: int, found: Findings, path: str) -> None:
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        found.add("invalid_tool_call", 'a call needs a "function" object with a string "name".', index, path)
        return
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        found.add(
            "invalid_tool_call_arguments",
            f'"arguments" must be a string holding a JSON object, not a JSON {json_type_name(arguments)}.',
            index,
            f"{path}.arguments",
        )
        return
    try:
        decoded = decode_json(arguments)
    except (ValueError, RecursionError) as exc:
        found.add(
            "invalid_tool_call_arguments",
            f'"arguments" is not valid JSON ({json_error_text(exc)}); '
            "write the arguments as a JSON object in a string.",
            index,
            f"{path}.arguments",
        )
        return
    if not isinstance(decoded, dict):
        found.add(
            "invalid_tool_call_arguments",
            f'"arguments" must hold a JSON object, not a JSON {json_type_name(decoded)}.',
            index,
            f"{path}.arguments",
        )


def check_tool_answer(message: dict[str, Any], index: int, found: Findings, call_ids: set[str]) -> None:
    call_id = message.get("tool_call_id")
    if "tool_call_id" not in message:
        found.add(
            "message_missing_key",
            'a tool message needs the "tool_call_id" it answers.',
            index,
            ".tool_call_id",
        )
    elif not isinstance(call_id, str):
        found.add("invalid_field_type", '"tool_call_id" must be a string.', index, ".tool_call_id")
    elif call_id not in call_ids:
        found.add(
            "tool_call_id_mismatch",
            f'"tool_call_id" {json.dumps(call_id)} matches no tool call made earlier in this example; '
            "use the id of the assistant's call that this message answers.",
            index,
            ".tool_call_id",
        )


def check_tools(example: dict[str, Any], found: Findings) -> None:
    for key in ("tools", "functions"):
        definitions = example.get(key)
        if definitions is None:
            continue
        if not isinstance(definitions, list):
            found.add("invalid_tools", f'"{key}" must be a list.', path=key)
            continue
        for tool_index, tool in enumerate(definitions):
            function = tool.get("function") if key == "tools" and isinstance(tool, dict) else tool
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                what = (
                    '{"type": "function", "function": {"name": ...}}' if key == "tools" else '{"name": ...}'
                )
                found.add("invalid_tools", f"each entry must look like {what}.", path=f"{key}[{tool_index}]")
            elif not isinstance(function.get("parameters", {}), dict):
                found.add(
                    "invalid_tools",
                    '"parameters" must be a JSON schema object.',
                    path=f"{key}[{tool_index}].parameters",
                )
    parallel = example.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        found.add("invalid_tools", '"parallel_tool_calls" must be true or false.', path="parallel_tool_calls")
