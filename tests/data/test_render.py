"""render_chat / render_prompt with the built-in tokenizer: masks, prompts and train/serve consistency."""

from __future__ import annotations

import json
from typing import Any

import pytest
from transformers import PreTrainedTokenizerFast

from openft.data.render import (
    RenderedChat,
    end_of_turn_id,
    render_chat,
    render_prompt,
    stop_token_ids,
    truncate,
)
from openft.models.chat_template import parse_tool_calls
from openft.models.tokenizer import build_byte_tokenizer

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
ARGUMENTS = '{"city": "Zürich"}'

CHAT = [
    {"role": "system", "content": "Marv is a factual chatbot that is also sarcastic."},
    {"role": "user", "content": "What's the capital of France?"},
    {"role": "assistant", "content": "Paris", "weight": 0},
    {"role": "user", "content": "Can you be more sarcastic?"},
    {"role": "assistant", "content": "Paris, as if everyone doesn't know that already.", "weight": 1},
]
TOOL_CHAT = [
    {"role": "developer", "content": "Use tools when they help."},
    {
        "role": "user",
        "content": [{"type": "text", "text": "Weather in Zürich? "}, {"type": "text", "text": "🌦"}],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ARGUMENTS}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "21.0"},
    {"role": "assistant", "content": "It is 21 °C in Zürich."},
]
CONVERSATIONS: list[tuple[list[dict[str, Any]], list[dict[str, Any]] | None]] = [
    (CHAT, None),
    (TOOL_CHAT, TOOLS),
    (
        [
            {"role": "user", "content": "  spaces \n\n and\ttabs  "},
            {"role": "assistant", "content": "\n ok \n"},
        ],
        None,
    ),
    (
        [{"role": "user", "content": "digits 1234567890 ½ 日本 👍🏽"}, {"role": "assistant", "content": ""}],
        TOOLS,
    ),
]


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return build_byte_tokenizer(model_max_length=2048)


def _trained_spans(tokenizer: PreTrainedTokenizerFast, rendered: RenderedChat) -> list[str]:
    """The decoded text of each run of consecutive loss-carrying tokens."""
    spans: list[list[int]] = []
    previous = 0
    for token, carries_loss in zip(rendered.input_ids, rendered.loss_mask, strict=True):
        if carries_loss and not previous:
            spans.append([])
        if carries_loss:
            spans[-1].append(token)
        previous = carries_loss
    return [tokenizer.decode(span) for span in spans]


@pytest.mark.parametrize(("messages", "tools"), CONVERSATIONS)
def test_pieces_tokenize_exactly_like_the_whole_text(
    tokenizer: PreTrainedTokenizerFast, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> None:
    for add_generation_prompt in (False, True):
        text = tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=False, add_generation_prompt=add_generation_prompt
        )
        rendered = render_chat(tokenizer, messages, tools, add_generation_prompt=add_generation_prompt)
        assert rendered.input_ids == tokenizer.encode(text, add_special_tokens=False)
        assert len(rendered.loss_mask) == len(rendered.input_ids)
        assert set(rendered.loss_mask) <= {0, 1}


def test_loss_is_on_assistant_content_and_end_token_only(tokenizer: PreTrainedTokenizerFast) -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "See you."},
    ]
    rendered = render_chat(tokenizer, messages)
    assert _trained_spans(tokenizer, rendered) == ["Hello!<|im_end|>", "See you.<|im_end|>"]
    im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert all(not m for t, m in zip(rendered.input_ids, rendered.loss_mask, strict=True) if t == im_start)
    assert rendered.n_loss_tokens == len("Hello!") + 1 + len("See you.") + 1
    assert rendered.n_tokens == len(rendered.input_ids)


def test_weight_zero_messages_carry_no_loss(tokenizer: PreTrainedTokenizerFast) -> None:
    rendered = render_chat(tokenizer, CHAT)
    assert _trained_spans(tokenizer, rendered) == [
        "Paris, as if everyone doesn't know that already.<|im_end|>"
    ]
    text = tokenizer.decode(rendered.input_ids)
    assert "<|im_start|>assistant\nParis<|im_end|>" in text  # still in the context, only without loss


def test_tool_calls_are_rendered_trained_and_parseable(tokenizer: PreTrainedTokenizerFast) -> None:
    rendered = render_chat(tokenizer, TOOL_CHAT, TOOLS)
    text = tokenizer.decode(rendered.input_ids)
    assert "# Tools" in text.split("<|im_start|>user")[0]  # the tools go into the developer block
    assert json.dumps(TOOLS[0], ensure_ascii=False) in text
    spans = _trained_spans(tokenizer, rendered)
    assert spans == [
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Zürich"}}</tool_call><|im_end|>',
        "It is 21 °C in Zürich.<|im_end|>",
    ]
    content, calls = parse_tool_calls(spans[0].removesuffix("<|im_end|>"))
    assert content == ""
    assert calls == [{"type": "function", "function": {"name": "get_weather", "arguments": ARGUMENTS}}]
    assert "<|im_start|>tool\n21.0<|im_end|>" in text


@pytest.mark.parametrize(("messages", "tools"), CONVERSATIONS)
def test_prompt_is_the_training_prefix_of_the_last_answer(
    tokenizer: PreTrainedTokenizerFast, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> None:
    full = render_chat(tokenizer, messages, tools)
    mask = full.loss_mask
    last_answer_start = max(i for i, m in enumerate(mask) if m and (i == 0 or not mask[i - 1]))
    prompt = render_prompt(tokenizer, messages[:-1], tools)
    assert prompt == full.input_ids[:last_answer_start]
    assert tokenizer.decode(prompt).endswith("<|im_start|>assistant\n")


def test_generation_prompt_adds_an_untrained_assistant_header(tokenizer: PreTrainedTokenizerFast) -> None:
    plain = render_chat(tokenizer, CHAT[:2])
    prompted = render_chat(tokenizer, CHAT[:2], add_generation_prompt=True)
    header = tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)
    assert prompted.input_ids == plain.input_ids + header
    assert prompted.loss_mask == plain.loss_mask + [0] * len(header)
    assert render_prompt(tokenizer, CHAT[:2]) == prompted.input_ids


def test_truncate_cuts_from_the_end(tokenizer: PreTrainedTokenizerFast) -> None:
    rendered = render_chat(tokenizer, CHAT)
    cut = truncate(rendered, 40)
    assert cut.input_ids == rendered.input_ids[:40]
    assert cut.loss_mask == rendered.loss_mask[:40]
    assert truncate(rendered, 10_000) == rendered
    with pytest.raises(ValueError, match="at least 1"):
        truncate(rendered, 0)


def test_end_of_turn_token_is_im_end(tokenizer: PreTrainedTokenizerFast) -> None:
    assert end_of_turn_id(tokenizer) == tokenizer.convert_tokens_to_ids("<|im_end|>") == 258
    assert stop_token_ids(tokenizer) == [258]


def test_bad_conversations_are_refused_with_a_reason(tokenizer: PreTrainedTokenizerFast) -> None:
    with pytest.raises(ValueError, match="at least one message"):
        render_chat(tokenizer, [])
    with pytest.raises(ValueError, match="first message is from the assistant"):
        render_chat(tokenizer, [{"role": "assistant", "content": "hi"}])


def test_a_template_that_rewrites_earlier_turns_is_refused() -> None:
    tokenizer = build_byte_tokenizer(model_max_length=2048)
    # Shows only the last message: earlier text changes as the conversation grows.
    tokenizer.chat_template = "{{ messages[-1].role }}: {{ messages[-1].content }}\n"
    with pytest.raises(ValueError, match="incrementally"):
        render_chat(tokenizer, CHAT)
