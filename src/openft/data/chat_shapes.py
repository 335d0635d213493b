"""Conversation shapes: a conversation with its texts replaced by numbered placeholders.

Conversations that differ only in their texts (contents, tool-call ids and arguments) have the same
shape. Rendering a shape through the chat template once gives the pieces of text that `render_chat`
tokenizes, with slots where the texts go; filling the slots gives any conversation of that shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openft.data.render import Tokenizer

Tools = Sequence[Mapping[str, Any]] | None

SLOT_MARK = "\ue000"  # a private-use character: never produced by a template
_SLOT = re.compile("\ue000(\\d+)\ue001")
_PLAIN_KEYS = frozenset(("role", "content", "weight"))


@dataclass(frozen=True)
class Piece:
    template: str  # the piece's text, with "{n}" where slot n goes (literal braces doubled)
    is_answer: bool  # a trained assistant message: loss up to its end-of-turn token

    def fill(self, values: Sequence[str]) -> str:
        return self.template.format(*values)


@dataclass
class Shape:
    """A conversation with its texts taken out: `key` is equal for conversations that differ only in
    those texts, `values` are the texts in slot order, `messages` hold numbered placeholders instead."""

    key: Hashable
    values: list[str]
    source: Sequence[Mapping[str, Any]]
    # Slots the template must write exactly once (the contents); None: all of them.
    required: frozenset[int] | None = None
    slotted: list[dict[str, Any]] | None = None  # made when first needed, for a plain conversation

    @property
    def messages(self) -> list[dict[str, Any]]:
        if self.slotted is None:  # plain: slot n is the content of message n
            self.slotted = [{**message, "content": _slot_text(n)} for n, message in enumerate(self.source)]
        return self.slotted


def _slot_text(number: int) -> str:
    return f"{SLOT_MARK}{number}\ue001"


def shape_of(messages: Sequence[Mapping[str, Any]], tools: Tools) -> Shape | None:
    """Slot every text content, tool-call id and arguments string; None if a text holds a slot mark."""
    tools_key = json.dumps(tools, sort_keys=True) if tools else None
    # Most conversations are role, content and weight only: their key is cheap to make.
    values: list[str] = []
    key: list[Hashable] = [tools_key]
    for message in messages:
        content = message.get("content")
        if type(content) is not str or not _PLAIN_KEYS.issuperset(message):
            return _general_shape(messages, tools_key)
        if SLOT_MARK in content:
            return None
        values.append(content)
        key.append((message.get("role"), message.get("weight", 1)))
    return Shape(tuple(key), values, messages)


def _general_shape(messages: Sequence[Mapping[str, Any]], tools_key: str | None) -> Shape | None:
    values: list[str] = []
    required: set[int] = set()

    def slot(value: str) -> str:
        values.append(value)
        return _slot_text(len(values) - 1)

    keys: list[Hashable] = []
    slotted: list[dict[str, Any]] = []
    for message in messages:
        copy = dict(message)
        if isinstance(message.get("content"), str):
            required.add(len(values))
            copy["content"] = slot(message["content"])
        if isinstance(copy.get("tool_calls"), list):
            copy["tool_calls"] = [_slot_call(call, slot) for call in copy["tool_calls"]]
        if isinstance(copy.get("tool_call_id"), str):
            copy["tool_call_id"] = slot(copy["tool_call_id"])
        keys.append(json.dumps(copy, sort_keys=True))
        slotted.append(copy)
    if any(SLOT_MARK in value for value in values):
        return None
    return Shape((tools_key, *keys), values, messages, frozenset(required), slotted)


def _slot_call(call: Any, slot: Callable[[str], str]) -> Any:
    if not isinstance(call, dict):
        return call
    call = dict(call)
    if isinstance(call.get("id"), str):
        call["id"] = slot(call["id"])
    function = call.get("function")
    if isinstance(function, dict) and isinstance(function.get("arguments"), str):
        call["function"] = {**function, "arguments": slot(function["arguments"])}
    return call


def render_skeleton(shape: Shape, tokenizer: Tokenizer, tools: Tools) -> tuple[Piece, ...] | None:
    """The pieces `render_chat` would tokenize, with the shape's numbered slots in them.

    None when the shape cannot be rendered this way: every content must appear exactly once and any
    other slot at most once, unchanged.
    """
    try:
        texts = _piece_texts(tokenizer, shape.messages, tools)
    except Exception:  # unrenderable shapes are reported by render_chat itself
        return None
    pieces = []
    written: list[int] = []
    for text, is_answer in texts:
        template, numbers = _template_of(text)
        pieces.append(Piece(template, is_answer))
        written += numbers
    required = shape.required if shape.required is not None else range(len(shape.values))
    if len(written) != len(set(written)) or not set(required).issubset(written):
        return None
    return tuple(pieces)


def _template_of(text: str) -> tuple[str, list[int]]:
    """A format string for a rendered piece, and the slot numbers it holds."""
    template: list[str] = []
    numbers: list[int] = []
    for index, chunk in enumerate(_SLOT.split(text)):
        if index % 2:
            numbers.append(int(chunk))
            template.append(f"{{{chunk}}}")
        else:
            template.append(chunk.replace("{", "{{").replace("}", "}}"))
    return "".join(template), numbers


def _piece_texts(
    tokenizer: Tokenizer, messages: list[dict[str, Any]], tools: Tools
) -> list[tuple[str, bool]]:
    """The texts render_chat tokenizes one by one: the new text of each message, and an assistant's
    role header apart from its content."""
    pieces: list[tuple[str, bool]] = []
    text_so_far = ""
    for index, message in enumerate(messages):
        is_assistant = message.get("role") == "assistant"
        if is_assistant:
            with_header = _template(tokenizer, messages[:index], tools, add_generation_prompt=True)
            pieces.append((with_header[len(text_so_far) :], False))
            text_so_far = with_header
        rendered = _template(tokenizer, messages[: index + 1], tools, add_generation_prompt=False)
        if not rendered.startswith(text_so_far):
            raise ValueError("the chat template does not render incrementally")
        pieces.append((rendered[len(text_so_far) :], is_assistant and message.get("weight", 1) != 0))
        text_so_far = rendered
    return pieces


def _template(
    tokenizer: Tokenizer, messages: list[dict[str, Any]], tools: Tools, *, add_generation_prompt: bool
) -> str:
    text = tokenizer.apply_chat_template(
        messages,
        tools=list(tools) if tools else None,
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
    )
    if not isinstance(text, str):
        raise TypeError("apply_chat_template returned no text")
    return text
