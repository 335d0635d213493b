"""/v1/chat/completions and /v1/completions on the base model through the official SDK: shapes, options,
streaming and OpenAI's errors. (Fine-tuned and checkpoint models: test_finetuned_models.py.)"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from openft.data.render import render_prompt
from openft.models.tokenizer import build_byte_tokenizer
from tests.conftest import LiveServer, ServerFactory
from tests.inference.conftest import TEST_SETTINGS

MODEL = "openft-tiny"
HI = [{"role": "user", "content": "Hi"}]
TOOLS = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]


@pytest.fixture(scope="module")
def server(module_server_factory: ServerFactory, tiny_model_dir: Path) -> LiveServer:
    data_dir = module_server_factory.root / f"server{len(module_server_factory.servers)}"
    shutil.copytree(tiny_model_dir, data_dir / "models" / MODEL)
    return module_server_factory(**TEST_SETTINGS)


@pytest.fixture(scope="module")
def client(server: LiveServer) -> OpenAI:
    return server.client()


def _chat(client: OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", HI)
    kwargs.setdefault("temperature", 0)
    return client.chat.completions.create(model=MODEL, **kwargs)


def test_chat_completion_has_openai_shape_and_token_counts(client: OpenAI) -> None:
    completion = _chat(client, max_tokens=7)
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL and abs(completion.created - time.time()) < 60
    (choice,) = completion.choices
    assert choice.index == 0 and choice.message.role == "assistant" and choice.finish_reason == "length"
    assert choice.logprobs is None and choice.message.tool_calls is None
    prompt = render_prompt(build_byte_tokenizer(2048), HI)  # the rendering training uses
    assert completion.usage.prompt_tokens == len(prompt)
    assert completion.usage.completion_tokens == 7
    assert completion.usage.total_tokens == len(prompt) + 7


def test_max_completion_tokens_and_developer_and_text_parts_are_accepted(client: OpenAI) -> None:
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": " there"}]},
    ]
    completion = _chat(client, messages=messages, max_completion_tokens=3)
    assert completion.usage.completion_tokens == 3
    as_text = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
    assert (
        completion.choices[0].message.content
        == _chat(client, messages=as_text, max_tokens=3).choices[0].message.content
    )


def test_streaming_sends_the_same_answer_in_chunks_with_usage_last(client: OpenAI) -> None:
    whole = _chat(client, max_tokens=12).choices[0].message.content
    chunks = list(_chat(client, max_tokens=12, stream=True, stream_options={"include_usage": True}))
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 12
    assert all(c.usage is None for c in chunks[:-1])


def test_n_choices_stream_and_seed_repeats_them(client: OpenAI) -> None:
    options = {"n": 3, "temperature": 1.0, "seed": 42, "max_tokens": 10}
    first = _chat(client, **options)
    assert [c.index for c in first.choices] == [0, 1, 2]
    assert len({c.message.content for c in first.choices}) == 3
    assert [c.message.content for c in _chat(client, **options).choices] == [
        c.message.content for c in first.choices
    ]
    assert first.usage.completion_tokens == 30
    streamed: dict[int, str] = {}
    for chunk in _chat(client, stream=True, **options):
        for choice in chunk.choices:
            streamed[choice.index] = streamed.get(choice.index, "") + (choice.delta.content or "")
    assert [streamed[i] for i in range(3)] == [c.message.content for c in first.choices]


def test_stop_sequences_end_the_answer_before_them(client: OpenAI) -> None:
    options = {
        "temperature": 1.0,
        "seed": 3,
        "max_tokens": 30,
        "logit_bias": {str(i): 6 for i in range(97, 123)},
    }
    text = _chat(client, **options).choices[0].message.content
    stop = text[8:10]
    stopped = _chat(client, stop=[stop, "never appears"], **options).choices[0]
    assert stopped.message.content == text[: text.index(stop)] and stopped.finish_reason == "stop"


def test_logprobs_cover_every_completion_token(client: OpenAI) -> None:
    completion = _chat(client, max_tokens=5, logprobs=True, top_logprobs=3)
    content = completion.choices[0].logprobs.content
    assert len(content) == completion.usage.completion_tokens == 5
    for entry in content:
        assert len(entry.top_logprobs) == 3 and entry.top_logprobs[0].token == entry.token
        assert entry.bytes and entry.logprob <= 0
    streamed = [
        e.token
        for chunk in _chat(client, max_tokens=5, logprobs=True, stream=True)
        for choice in chunk.choices
        if choice.logprobs and choice.logprobs.content
        for e in choice.logprobs.content
    ]
    assert streamed == [e.token for e in content]


def test_tools_are_accepted_and_rendered_into_the_prompt(client: OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]
    with_tools = _chat(client, max_tokens=2, tools=tools, tool_choice="auto")
    assert with_tools.usage.prompt_tokens > _chat(client, max_tokens=2).usage.prompt_tokens
    history = [
        *HI,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "12:00"},
    ]
    assert _chat(client, messages=history, tools=tools, max_tokens=2).usage.completion_tokens == 2


def test_completions_endpoint_for_prompt_completion_models(client: OpenAI) -> None:
    completion = client.completions.create(
        model=MODEL, prompt=["Hello", "abc"], max_tokens=4, n=2, temperature=0, logprobs=2
    )
    assert completion.object == "text_completion" and completion.id.startswith("cmpl-")
    assert [c.index for c in completion.choices] == [0, 1, 2, 3]
    assert completion.usage.prompt_tokens == len("Hello") + len("abc")  # one token per byte
    assert completion.usage.completion_tokens == 16
    assert all(c.finish_reason == "length" and len(c.logprobs.tokens) == 4 for c in completion.choices)
    assert completion.choices[0].text == completion.choices[1].text  # greedy
    default = client.completions.create(model=MODEL, prompt="Hello", temperature=0)
    assert default.usage.completion_tokens == 16  # OpenAI's default max_tokens
    echoed = client.completions.create(model=MODEL, prompt="Hello", max_tokens=4, temperature=0, echo=True)
    assert echoed.choices[0].text == "Hello" + completion.choices[0].text
    streamed = client.completions.create(
        model=MODEL, prompt="Hello", max_tokens=4, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == completion.choices[0].text
    by_ids = client.completions.create(model=MODEL, prompt=[72, 105], max_tokens=2, temperature=0)
    assert by_ids.usage.prompt_tokens == 2


def _error(call: Any, kind: type[openai.APIStatusError]) -> dict[str, Any]:
    with pytest.raises(kind) as caught:
        call()
    body = caught.value.body
    assert isinstance(body, dict)
    return body


def test_unknown_model_is_openai_404(client: OpenAI) -> None:
    for name in ("gpt-9", "ft:openft-tiny:personal::AbCdEfGh"):
        body = _error(
            lambda n=name: client.chat.completions.create(model=n, messages=HI), openai.NotFoundError
        )
        assert body["message"] == f"The model `{name}` does not exist or you do not have access to it."
        assert body["code"] == "model_not_found" and body["type"] == "invalid_request_error"
    body = _error(lambda: client.completions.create(model="gpt-9", prompt="x"), openai.NotFoundError)
    assert body["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 0}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"presence_penalty": 5}, "presence_penalty"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"top_logprobs": 30, "logprobs": True}, "top_logprobs"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"logit_bias": {"65": 500}}, "logit_bias"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"tool_choice": "none"}, "tool_choice"),
        ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "other"}}}, "tool_choice"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"response_format": {"type": "json_object"}}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages[0].content[0].type",
        ),
        ({"messages": [{"role": "assistant", "content": "first"}]}, "messages"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    client: OpenAI, options: dict[str, Any], param: str
) -> None:
    body = _error(lambda: _chat(client, **options), openai.BadRequestError)
    assert body["param"] == param and body["type"] == "invalid_request_error", body


def test_context_overflow_is_400_naming_the_limit(client: OpenAI) -> None:
    body = _error(lambda: _chat(client, max_tokens=5000), openai.BadRequestError)
    assert body["code"] == "context_length_exceeded" and body["param"] == "messages"
    assert "maximum context length is 2048 tokens" in body["message"]
    long_prompt = [{"role": "user", "content": "x" * 3000}]
    body = _error(lambda: _chat(client, messages=long_prompt), openai.BadRequestError)
    assert body["code"] == "context_length_exceeded"
    body = _error(
        lambda: client.completions.create(model=MODEL, prompt="x" * 2040, max_tokens=100),
        openai.BadRequestError,
    )
    assert body["param"] == "prompt"


def test_a_client_leaving_a_stream_frees_its_generation_slot(server: LiveServer) -> None:
    body = {"model": MODEL, "messages": HI, "max_tokens": 2000, "stream": True, "logit_bias": {"97": 100}}
    with httpx.Client(base_url=server.base_url, headers={"authorization": "Bearer x"}, timeout=30) as http:  # noqa: SIM117
        with http.stream("POST", "/chat/completions", json=body) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
    engine = server.root.engine.get()
    deadline = time.monotonic() + 1.5  # generating all 2000 tokens takes several seconds
    while engine.stats().n_running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine.stats().n_running == 0


def _raw_post(server: LiveServer, path: str, body: dict[str, Any]) -> httpx.Response:
    # The SDK cannot send a lone surrogate (it encodes JSON as UTF-8); other clients escape it as \ud800.
    with httpx.Client(base_url=server.base_url, headers={"authorization": "Bearer x"}, timeout=30) as http:
        content = json.dumps(body)  # ASCII, the surrogate escaped
        return http.post(path, content=content, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "user", "content": "\ud800"}], "messages[0].content"),
        (
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "a\udfff"}]},
            ],
            "messages[1].content[0].text",
        ),
    ],
)
def test_a_lone_surrogate_is_400_naming_the_field_not_a_tokenizer_error(
    server: LiveServer, messages: list[dict[str, Any]], param: str
) -> None:
    response = _raw_post(server, "/chat/completions", {"model": MODEL, "messages": messages, "max_tokens": 2})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error", error
    assert "invalid character" in error["message"] and "unpaired surrogate" in error["message"]
    response = _raw_post(
        server, "/completions", {"model": MODEL, "prompt": ["fine", "\ud800"], "max_tokens": 2}
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "prompt[1]", response.text
