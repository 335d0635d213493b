"""BatchRenderer gives exactly what render_chat gives, whatever the conversation or template."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from openft.data.fast_render import BatchRenderer
from openft.data.render import render_chat

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
TEXTS = ["Hi", "", " padded ", "line\nbreak", "Ünïcödé ☃", "<|im_end|> inside", "{{ not jinja }}", "x" * 50]


def _random_conversation(rng: random.Random) -> tuple[list[dict[str, Any]], Any]:
    messages: list[dict[str, Any]] = []
    if rng.random() < 0.5:
        messages.append(
            {"role": rng.choice(["system", "developer"]), "content": rng.choice(TEXTS) or "Be brief."}
        )
    for turn in range(rng.randint(1, 3)):
        user: dict[str, Any] = {"role": "user", "content": rng.choice(TEXTS) or "?"}
        if rng.random() < 0.2:
            user["content"] = [{"type": "text", "text": "part one "}, {"type": "text", "text": "part two"}]
        if rng.random() < 0.2:
            user["name"] = "ann"
        messages.append(user)
        if rng.random() < 0.3:
            call_id = f"call_{turn}"
            arguments = json.dumps({"city": rng.choice(["Paris", "Oslo"])})
            calls = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments},
                }
            ]
            messages.append({"role": "assistant", "content": None, "tool_calls": calls})
            messages.append({"role": "tool", "tool_call_id": call_id, "content": "21.0"})
        answer: dict[str, Any] = {"role": "assistant", "content": rng.choice(TEXTS)}
        if rng.random() < 0.3:
            answer["weight"] = rng.choice([0, 1])
        messages.append(answer)
    return messages, TOOLS if rng.random() < 0.3 else None


def test_random_conversations_render_exactly_like_render_chat(tokenizer: Any) -> None:
    rng = random.Random(7)
    conversations = [_random_conversation(rng) for _ in range(300)]
    renderer = BatchRenderer(tokenizer)
    assert renderer.fast
    references = [render_chat(tokenizer, messages, tools) for messages, tools in conversations]
    assert renderer.render(conversations[:150]) + renderer.render(conversations[150:]) == references
    counts = [(len(reference.input_ids), sum(reference.loss_mask[:40])) for reference in references]
    assert renderer.count(conversations, 40) == counts


def test_counts_match_the_truncated_mask(tokenizer: Any) -> None:
    messages = [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6"},
    ]
    reference = render_chat(tokenizer, messages)
    renderer = BatchRenderer(tokenizer)
    renderer.count([(messages, None)], 10)  # the first of a shape goes through render_chat as well
    for limit in range(1, len(reference.input_ids) + 2):
        expected = (len(reference.input_ids), sum(reference.loss_mask[:limit]))
        assert renderer.count([(messages, None)], limit) == [expected]


def test_a_template_that_edits_contents_falls_back_to_render_chat(tokenizer: Any) -> None:
    trimming = copy.deepcopy(tokenizer)
    trimming.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content | trim }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    renderer = BatchRenderer(trimming)
    assert not renderer.fast
    conversation = (
        [{"role": "user", "content": "  Hi  "}, {"role": "assistant", "content": " Hello "}],
        None,
    )
    assert renderer.render([conversation]) == [render_chat(trimming, *conversation)]


def test_an_unrenderable_conversation_comes_back_as_its_error(tokenizer: Any) -> None:
    (result,) = BatchRenderer(tokenizer).render([([{"role": "assistant", "content": "Hi"}], None)])
    assert isinstance(result, ValueError)
    assert str(result) == "the first message is from the assistant: put a system or user message first"
