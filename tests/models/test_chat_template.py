"""The built-in ChatML template: exact layout, tools, tool calls, and parsing generated tool calls back."""

from __future__ import annotations

import pytest
from transformers import PreTrainedTokenizerFast

from openft.models.chat_template import parse_tool_calls
from openft.models.tokenizer import build_byte_tokenizer

TOOL = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return build_byte_tokenizer(model_max_length=2048)


def _render(tokenizer: PreTrainedTokenizerFast, messages: list[dict], **kwargs: object) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)


def test_plain_conversation_layout(tokenizer: PreTrainedTokenizerFast) -> None:
    messages = [
        {"role": "system", "content": "S"},
        {"role": "developer", "content": "D"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "A"},
    ]
    assert _render(tokenizer, messages, add_generation_prompt=True) == (
        "<|im_start|>system\nS<|im_end|>\n"
        "<|im_start|>developer\nD<|im_end|>\n"
        "<|im_start|>user\nU<|im_end|>\n"
        "<|im_start|>assistant\nA<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_text_parts_are_joined_and_other_parts_skipped(tokenizer: PreTrainedTokenizerFast) -> None:
    content = [
        {"type": "text", "text": "look "},
        {"type": "image_url", "image_url": {"url": "x"}},
        {"type": "text", "text": "here"},
    ]
    assert (
        _render(tokenizer, [{"role": "user", "content": content}])
        == "<|im_start|>user\nlook here<|im_end|>\n"
    )


def test_tools_get_a_system_block_when_there_is_none(tokenizer: PreTrainedTokenizerFast) -> None:
    text = _render(tokenizer, [{"role": "user", "content": "1+1?"}], tools=[TOOL])
    system, user = text.split("<|im_end|>\n")[:2]
    assert system.startswith("<|im_start|>system\n# Tools\n")
    assert '{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}' in system
    assert user == "<|im_start|>user\n1+1?"


def test_tools_join_the_first_system_or_developer_message(tokenizer: PreTrainedTokenizerFast) -> None:
    for role in ("system", "developer"):
        text = _render(
            tokenizer,
            [{"role": role, "content": "Be exact."}, {"role": "user", "content": "hi"}],
            tools=[TOOL],
        )
        assert text.startswith(f"<|im_start|>{role}\nBe exact.\n\n# Tools\n")
        assert text.count("<|im_start|>") == 2


def test_tool_calls_follow_the_content_one_line_each(tokenizer: PreTrainedTokenizerFast) -> None:
    calls = [
        {"id": "a", "type": "function", "function": {"name": "add", "arguments": '{"x": 1}'}},
        {"name": "add", "arguments": {"x": 2}},  # the transformers convention: arguments as a dict
    ]
    text = _render(tokenizer, [{"role": "assistant", "content": "Adding.", "tool_calls": calls}])
    assert text == (
        "<|im_start|>assistant\nAdding.\n"
        '<tool_call>{"name": "add", "arguments": {"x": 1}}</tool_call>\n'
        '<tool_call>{"name": "add", "arguments": {"x": 2}}</tool_call><|im_end|>\n'
    )
    body = text.removeprefix("<|im_start|>assistant\n").removesuffix("<|im_end|>\n")
    content, parsed = parse_tool_calls(body)
    assert content == "Adding."
    assert [call["function"] for call in parsed] == [
        {"name": "add", "arguments": '{"x": 1}'},
        {"name": "add", "arguments": '{"x": 2}'},
    ]


def test_parse_keeps_text_without_calls_and_broken_calls() -> None:
    assert parse_tool_calls("just text\n") == ("just text\n", [])
    broken = '<tool_call>{"name": "add", "arguments": </tool_call>'
    assert parse_tool_calls(broken) == (broken, [])
    assert parse_tool_calls('<tool_call>["not", "a call"]</tool_call>') == (
        '<tool_call>["not", "a call"]</tool_call>',
        [],
    )
