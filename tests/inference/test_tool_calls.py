"""A model that answers with a tool call gets `tool_calls` back, parsed from the chat template's format.

The model is openft-tiny taught one conversation by heart here (a few seconds of full fine-tuning on a
single example), then registered as a local base model, which is how a user serves their own weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from openft.data.render import render_chat
from openft.models.catalog import Catalog
from tests.conftest import LiveServer, ServerFactory
from tests.inference.conftest import TEST_SETTINGS

TOOLS = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
QUESTION = [{"role": "user", "content": "Time in Oslo?"}]
CALL = {"name": "get_time", "arguments": json.dumps({"zone": "Europe/Oslo"})}


@pytest.fixture(scope="module")
def tool_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    answer = {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "call_1", "type": "function", "function": CALL}],
    }
    rendered = render_chat(tokenizer, [*QUESTION, answer], TOOLS)
    ids = torch.tensor([rendered.input_ids])
    labels = torch.where(torch.tensor([rendered.loss_mask]) == 1, ids, -100)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy 2-core machine is much slower with 2
    try:
        for _ in range(150):  # about 70 steps reach the threshold
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if loss.item() < 0.03:
                break
    finally:
        torch.set_num_threads(n_threads)
    out = tmp_path_factory.mktemp("tool-model") / "model"
    shutil.copytree(tiny_model_dir, out)
    model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def client(module_server_factory: ServerFactory, tool_model_dir: Path) -> OpenAI:
    server: LiveServer = module_server_factory(**TEST_SETTINGS)
    Catalog(server.settings.models_dir).add_local("tool-caller", tool_model_dir)
    return server.client()


def test_a_tool_call_answer_comes_back_as_tool_calls(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="tool-caller", messages=QUESTION, tools=TOOLS, temperature=0, max_tokens=150
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message.content
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_time" and json.loads(call.function.arguments) == {"zone": "Europe/Oslo"}


def test_a_streamed_tool_call_arrives_as_tool_call_deltas(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="tool-caller", messages=QUESTION, tools=TOOLS, temperature=0, max_tokens=150, stream=True
        )
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    assert content == "" and "<tool_call>" not in content
    assert [(c.index, c.function.name) for c in calls] == [(0, "get_time")]
    assert json.loads(calls[0].function.arguments) == {"zone": "Europe/Oslo"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_choice_none_leaves_the_text_alone(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="tool-caller", messages=QUESTION, tools=TOOLS, tool_choice="none", temperature=0, max_tokens=150
    )
    choice = completion.choices[0]
    assert choice.message.tool_calls is None and choice.finish_reason == "stop"
    assert choice.message.content.startswith("<tool_call>")


def test_tool_choice_required_starts_the_answer_with_a_call(client: OpenAI) -> None:
    auto = client.chat.completions.create(
        model="tool-caller", messages=QUESTION, tools=TOOLS, temperature=0, max_tokens=150
    )
    for stream in (False, True):
        completion = _complete(client, stream, messages=QUESTION, tools=TOOLS, tool_choice="required")
        assert completion["finish_reason"] == "tool_calls", completion
        assert completion["calls"] == [
            (CALL["name"], auto.choices[0].message.tool_calls[0].function.arguments)
        ]
    # The call's opening was prefilled: it is prompt, not completion.
    required = client.chat.completions.create(
        model="tool-caller",
        messages=QUESTION,
        tools=TOOLS,
        tool_choice="required",
        temperature=0,
        max_tokens=150,
    )
    n_prefilled = len('<tool_call>{"name": "get_time", "arguments": ')  # one token per byte in openft-tiny
    assert required.usage.prompt_tokens == auto.usage.prompt_tokens + n_prefilled
    assert required.usage.completion_tokens == auto.usage.completion_tokens - n_prefilled
    # A question the model was not taught to answer with a call: the answer is one all the same, though
    # this tiny model cannot finish it well (an unparsable call stays in the content, as with "auto").
    other = client.chat.completions.create(
        model="tool-caller",
        messages=[{"role": "user", "content": "Hello!"}],
        tools=TOOLS,
        tool_choice="required",
        temperature=0,
        max_tokens=60,
    ).choices[0]
    assert other.message.tool_calls or other.message.content.startswith('<tool_call>{"name": "get_time"')


def test_a_named_tool_choice_prefills_that_function(client: OpenAI, tool_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from openft.inference.tool_choice import ToolChoice, prefill_ids

    tools = [*TOOLS, {"type": "function", "function": {"name": "get_date", "parameters": {"type": "object"}}}]
    tokenizer = AutoTokenizer.from_pretrained(str(tool_model_dir))
    for name in ("get_date", "get_time"):
        ids = prefill_ids(tokenizer, QUESTION, tools, ToolChoice("required", name))
        assert tokenizer.decode(ids) == f'<tool_call>{{"name": "{name}", "arguments": '
    assert tokenizer.decode(prefill_ids(tokenizer, QUESTION, tools, ToolChoice("required"))) == (
        '<tool_call>{"name": "'
    )
    # Through the API, on the prompt this tiny model was taught (a second tool confuses it).
    choice = {"type": "function", "function": {"name": "get_time"}}
    for stream in (False, True):
        completion = _complete(client, stream, messages=QUESTION, tools=TOOLS, tool_choice=choice)
        assert completion["finish_reason"] == "tool_calls", completion
        assert completion["calls"] == [(CALL["name"], CALL["arguments"])]


def _complete(client: OpenAI, stream: bool, **options: Any) -> dict[str, Any]:
    """finish_reason, content and (name, arguments) of each call, from a response or from its chunks."""
    options = {"model": "tool-caller", "temperature": 0, "max_tokens": 150, **options}
    if not stream:
        choice = client.chat.completions.create(**options).choices[0]
        calls = [(c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
        return {"finish_reason": choice.finish_reason, "content": choice.message.content, "calls": calls}
    chunks = [c for c in client.chat.completions.create(stream=True, **options) if c.choices]
    deltas = [call for c in chunks for call in c.choices[0].delta.tool_calls or []]
    content = "".join(c.choices[0].delta.content or "" for c in chunks) or None
    calls = [(d.function.name, d.function.arguments) for d in deltas if d.function]
    return {"finish_reason": chunks[-1].choices[0].finish_reason, "content": content, "calls": calls}
