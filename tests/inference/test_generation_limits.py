"""Bounds on one request's generation: a deadline in seconds and a default max_tokens, so a model that never
ends its answer cannot hold the engine for minutes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from openai import OpenAI

from openft.inference.config import EngineConfig
from openft.inference.local import LocalEngine
from openft.inference.requests import completion_budget
from tests.conftest import LiveServer, ServerFactory
from tests.inference.conftest import TEST_SETTINGS, base_ref, chat_request, run

MODEL = "openft-tiny"
# Forces "a" at every step: the end-of-turn token never comes.
NEVER_ENDING = {"97": 100.0}


def test_a_request_past_its_deadline_finishes_with_length(tiny_model_dir: Path) -> None:
    engine = LocalEngine(EngineConfig(cpu_threads=1, max_request_s=0.2))
    try:
        request = chat_request(
            engine, base_ref(tiny_model_dir), "Hi", max_tokens=2000, logit_bias={97: 100.0}
        )
        output = run(engine, request)
        assert output.finish == ["length"]
        assert 0 < output.n_tokens[0] < 2000
        assert set(output.texts[0]) == {"a"}
    finally:
        engine.close()


def test_without_a_deadline_the_same_request_runs_to_max_tokens(tiny_model_dir: Path) -> None:
    engine = LocalEngine(EngineConfig(cpu_threads=1, max_request_s=0))
    try:
        request = chat_request(engine, base_ref(tiny_model_dir), "Hi", max_tokens=40, logit_bias={97: 100.0})
        assert run(engine, request).n_tokens == [40]
    finally:
        engine.close()


def test_the_default_max_tokens_is_bounded_by_the_context() -> None:
    assert completion_budget(None, 100, 2048, prompt_param="messages", default=1024) == 1024
    assert completion_budget(None, 1500, 2048, prompt_param="messages", default=1024) == 548
    assert completion_budget(50, 100, 2048, prompt_param="messages", default=1024) == 50  # asked for: kept


@pytest.fixture(scope="module")
def client(module_server_factory: ServerFactory, tiny_model_dir: Path) -> OpenAI:
    data_dir = module_server_factory.root / f"server{len(module_server_factory.servers)}"
    shutil.copytree(tiny_model_dir, data_dir / "models" / MODEL)
    server: LiveServer = module_server_factory(
        inference_max_request_s=0.2, inference_default_max_tokens=1500, **TEST_SETTINGS
    )
    return server.client()


def test_a_chat_request_without_max_tokens_stops_at_the_deadline(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], logit_bias=NEVER_ENDING
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and 0 < completion.usage.completion_tokens < 1500
    streamed = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], logit_bias=NEVER_ENDING, stream=True
    )
    assert [c.choices[0].finish_reason for c in streamed if c.choices][-1] == "length"
