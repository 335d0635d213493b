"""response_format on /v1/chat/completions: Structured Outputs (json_schema) and JSON mode (json_object).

The model is openft-tiny, untrained: left alone it writes bytes at random, so an answer that parses and
matches its schema every time shows the grammar at work, not the model."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import jsonschema
import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from tests.conftest import LiveServer, ServerFactory
from tests.inference.conftest import TEST_SETTINGS

MODEL = "openft-tiny"
ASK = [{"role": "user", "content": "Route this ticket: my invoice is wrong."}]
ROUTE_SCHEMA = {
    "type": "object",
    "properties": {
        "team": {"type": "string", "enum": ["billing", "tech", "sales"]},
        "urgent": {"type": "boolean"},
        "priority": {"type": "integer", "minimum": 1, "maximum": 3},
    },
    "required": ["team", "urgent", "priority"],
    "additionalProperties": False,
}
ROUTE = {"type": "json_schema", "json_schema": {"name": "route", "schema": ROUTE_SCHEMA, "strict": True}}


class Route(BaseModel):
    team: Literal["billing", "tech", "sales"]
    urgent: bool


@pytest.fixture(scope="module")
def client(module_server_factory: ServerFactory, tiny_model_dir: Path) -> OpenAI:
    data_dir = module_server_factory.root / f"server{len(module_server_factory.servers)}"
    shutil.copytree(tiny_model_dir, data_dir / "models" / MODEL)
    server: LiveServer = module_server_factory(**TEST_SETTINGS)
    return server.client()


def _chat(client: OpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", ASK)
    kwargs.setdefault("max_tokens", 80)
    return client.chat.completions.create(model=MODEL, **kwargs)


def test_json_schema_answers_parse_and_match_the_schema(client: OpenAI) -> None:
    completion = _chat(client, response_format=ROUTE, n=6, temperature=1.0, seed=3)
    assert len(completion.choices) == 6
    teams = set()
    for choice in completion.choices:
        assert choice.finish_reason == "stop", choice
        answer = json.loads(choice.message.content)
        jsonschema.validate(answer, ROUTE_SCHEMA)
        teams.add(answer["team"])
    assert len(teams) > 1  # sampled, not one fixed answer


def test_streamed_structured_answer_is_the_same_json(client: OpenAI) -> None:
    whole = _chat(client, response_format=ROUTE, temperature=0).choices[0].message.content
    chunks = list(_chat(client, response_format=ROUTE, temperature=0, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    jsonschema.validate(json.loads(whole), ROUTE_SCHEMA)


def test_the_sdk_parse_helper_returns_the_pydantic_object(client: OpenAI) -> None:
    completion = client.chat.completions.parse(
        model=MODEL, messages=ASK, response_format=Route, max_tokens=80, temperature=0.7, seed=1
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Route) and parsed.team in ("billing", "tech", "sales")


def test_json_mode_answers_an_object(client: OpenAI) -> None:
    messages = [{"role": "user", "content": "Answer in JSON: what is the capital of France?"}]
    completion = _chat(client, messages=messages, response_format={"type": "json_object"}, n=4, seed=5)
    for choice in completion.choices:
        text = choice.message.content
        assert text.startswith("{"), text
        if choice.finish_reason == "stop":
            assert isinstance(json.loads(text), dict)


def test_a_constrained_request_leaves_its_batch_mates_free(client: OpenAI) -> None:
    """Free greedy answers are the same whether or not structured requests share their batch."""
    free = [{"role": "user", "content": f"Say something about {topic}."} for topic in ("cats", "rain")]
    alone = [
        _chat(client, messages=[m], temperature=0, max_tokens=24).choices[0].message.content for m in free
    ]
    with ThreadPoolExecutor(6) as pool:
        structured = [pool.submit(_chat, client, response_format=ROUTE, temperature=1.0) for _ in range(4)]
        mixed = [pool.submit(_chat, client, messages=[m], temperature=0, max_tokens=24) for m in free]
        assert [f.result().choices[0].message.content for f in mixed] == alone
        for f in structured:
            jsonschema.validate(json.loads(f.result().choices[0].message.content), ROUTE_SCHEMA)


@pytest.mark.parametrize(
    ("options", "param", "words"),
    [
        ({"response_format": {"type": "json_object"}}, "messages", "must contain the word 'json'"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", "json_schema"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}}},
            "response_format.json_schema.name",
            "letters, digits",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "objekt"}, "strict": True},
                }
            },
            "response_format.json_schema.schema",
            "objekt",
        ),
        (
            {
                "response_format": ROUTE,
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            },
            "response_format",
            "tools",
        ),
    ],
)
def test_bad_response_formats_are_400_naming_the_field(
    client: OpenAI, options: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _chat(client, **options)
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == param, body
    assert words in body["message"], body
