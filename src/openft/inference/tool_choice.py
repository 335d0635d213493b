"""`tool_choice`: checked against `tools`, and enforced by prefilling the start of a tool call.

"required" starts the answer with the chat template's tool-call opening up to the function name, and a
named function (or "required" with a single tool) with the opening, that name and everything up to the
arguments, so the model can only go on writing a call. The prefill is
cut from the tokens the template gives a real tool-call answer (rendered as training renders it), so the
model sees the token boundaries it was trained on. "none" adds nothing and parses nothing: tools stay in
the prompt (the model keeps its context) and any tool-call markup it writes comes back as plain content.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openft.data.render import render_chat, render_prompt
from openft.errors import InvalidRequest
from openft.schemas.chat import ChatCompletionRequest

MODES = ("none", "auto", "required")


@dataclass(frozen=True)
class ToolChoice:
    mode: str  # "none", "auto" or "required" (a named function is "required" with a name)
    function: str | None = None

    @property
    def parses(self) -> bool:
        return self.mode != "none"

    @property
    def forces(self) -> bool:
        return self.mode == "required"


def tool_choice(body: ChatCompletionRequest) -> ToolChoice:
    """The request's choice, checked; `auto` when it has tools and no choice, `none` without tools."""
    choice = body.tool_choice
    if choice is None:
        return ToolChoice("auto" if body.tools else "none")
    if not body.tools:
        # OpenAI refuses any tool_choice, "none" included, when the request has no tools.
        raise InvalidRequest(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            param="tool_choice",
        )
    if isinstance(choice, str):
        if choice not in MODES:
            raise InvalidRequest(
                f"Invalid value: '{choice}'. Supported values are: 'none', 'auto' and 'required'.",
                param="tool_choice",
            )
        if choice == "required" and len(body.tools) == 1:
            # One tool to choose from: the call is that function's, so its name can be prefilled too.
            return ToolChoice(
                "required",
                _named_function({"type": "function", "function": body.tools[0].get("function")}, body.tools),
            )
        return ToolChoice(choice)
    return ToolChoice("required", _named_function(choice, body.tools))


def prefill_ids(
    tokenizer: Any,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    choice: ToolChoice,
) -> list[int]:
    """Tokens that start the answer so that it must be a tool call ([] when nothing is forced)."""
    if not choice.forces or not tools:
        return []
    name = choice.function or str(tools[0]["function"]["name"])
    prompt = render_prompt(tokenizer, messages, tools)
    call = {"id": "call_0", "type": "function", "function": {"name": name, "arguments": "{}"}}
    answer = {"role": "assistant", "content": "", "tool_calls": [call]}
    answer_ids = render_chat(tokenizer, [*messages, answer], tools).input_ids[len(prompt) :]
    text = tokenizer.decode(answer_ids, skip_special_tokens=False)
    start = text.find(name)
    if start < 0:
        return []  # a template that does not write tool calls: nothing to start the answer with
    if choice.function is None:
        target = text[:start]  # the model picks the function
    else:
        # Up to where the arguments begin: the model only writes those (the example's are "{}").
        arguments = text.find("{}", start + len(name))
        target = text[:arguments] if arguments >= 0 else text[: start + len(name)]
    return _token_prefix(tokenizer, answer_ids, target)


def _token_prefix(tokenizer: Any, ids: list[int], target: str) -> list[int]:
    """The most tokens of `ids` whose text is a prefix of `target` (a whole-token cut of it)."""
    for n in range(len(ids), 0, -1):
        if target.startswith(tokenizer.decode(ids[:n], skip_special_tokens=False)):
            return ids[:n]
    return []


def _named_function(choice: dict[str, Any], tools: list[dict[str, Any]]) -> str:
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if choice.get("type") != "function" or not isinstance(name, str) or not name:
        raise InvalidRequest(
            "Invalid value for 'tool_choice': use 'none', 'auto', 'required' or "
            "{'type': 'function', 'function': {'name': ...}}.",
            param="tool_choice",
        )
    names = [tool.get("function", {}).get("name") for tool in tools if isinstance(tool.get("function"), dict)]
    if name not in names:
        raise InvalidRequest(
            f"Invalid value for 'tool_choice': the function '{name}' is not among the 'tools' "
            f"({', '.join(repr(n) for n in names)}).",
            param="tool_choice",
        )
    return name
