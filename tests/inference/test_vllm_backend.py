"""The vLLM backend against a FAKE vLLM server on loopback (tests/inference/fake_vllm.py): vLLM cannot run
here, so these check openft's side only: adapters registered once through the runtime LoRA API, prompts
forwarded as the training rendering's token ids, output mapped back, other weights served locally."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from openft.data.render import render_prompt
from openft.inference.config import EngineConfig
from openft.inference.local import LocalEngine
from openft.inference.types import ModelRef
from openft.inference.vllm import VLLMEngine, adapter_name
from tests.conftest import ServerFactory
from tests.inference.conftest import TEST_SETTINGS, adapter_ref, base_ref, chat_request, collect
from tests.inference.fake_vllm import BASE_NAME, REPLY, FakeVLLM


@pytest.fixture
def fake(tiny_model_dir: Path) -> Iterator[FakeVLLM]:
    server = FakeVLLM(base_path=str(tiny_model_dir)).start()
    yield server
    server.stop()


@pytest.fixture
def vllm_engine(fake: FakeVLLM) -> Iterator[VLLMEngine]:
    engine = VLLMEngine(fake.url, fallback=LocalEngine(EngineConfig(cpu_threads=1)))
    yield engine
    engine.close()


def test_adapters_are_registered_once_and_generation_is_forwarded(
    fake: FakeVLLM, vllm_engine: VLLMEngine, tiny_model_dir: Path, adapter_dirs: list[Path]
) -> None:
    model = adapter_ref(tiny_model_dir, adapter_dirs[0])
    request = chat_request(vllm_engine, model, "Hi", max_tokens=50, stop=("END",), logprobs=1)

    first = asyncio.run(collect(vllm_engine, request))
    second = asyncio.run(collect(vllm_engine, request))

    name = adapter_name(str(adapter_dirs[0]))
    assert fake.load_calls == [{"lora_name": name, "lora_path": str(adapter_dirs[0])}]
    sent = fake.completion_calls[0]
    assert sent["model"] == name and sent["stream"] is True
    tokenizer = vllm_engine.tokenizer(model)
    assert sent["prompt"] == render_prompt(tokenizer, [{"role": "user", "content": "Hi"}])
    assert sent["stop"] == ["END"] and sent["stop_token_ids"] == list(request.stop_token_ids)
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0.0
    for output in (first, second):
        assert output.texts == [REPLY] and output.finish == ["stop"] and output.n_tokens == [len(REPLY)]
    entries = [e for d in first.deltas for e in d.logprobs]
    assert len(entries) == len(REPLY) and entries[0].top[0].token == REPLY[0]


def test_the_base_is_served_by_its_vllm_name_and_a_forgotten_adapter_is_registered_again(
    fake: FakeVLLM, vllm_engine: VLLMEngine, tiny_model_dir: Path, adapter_dirs: list[Path]
) -> None:
    base = chat_request(vllm_engine, base_ref(tiny_model_dir), "Hi", max_tokens=5)
    output = asyncio.run(collect(vllm_engine, base))
    assert fake.completion_calls[-1]["model"] == BASE_NAME and fake.load_calls == []
    assert output.texts == [REPLY[:5]] and output.finish == ["length"]

    adapter = chat_request(vllm_engine, adapter_ref(tiny_model_dir, adapter_dirs[1]), "Hi")
    asyncio.run(collect(vllm_engine, adapter))
    fake.loaded.clear()  # vLLM restarted
    assert asyncio.run(collect(vllm_engine, adapter)).texts == [REPLY[:12]]
    assert len(fake.load_calls) == 2


def test_weights_vllm_does_not_serve_are_generated_locally(
    fake: FakeVLLM, vllm_engine: VLLMEngine, full_model_dir: Path
) -> None:
    full = ModelRef("ft:full", str(full_model_dir), None, str(full_model_dir), 2048)
    request = chat_request(vllm_engine, full, "Hi", max_tokens=4)
    output = asyncio.run(collect(vllm_engine, request))
    assert fake.completion_calls == [] and output.n_tokens == [4]


def test_the_api_serves_through_vllm_when_configured(
    server_factory: ServerFactory, tiny_model_dir: Path
) -> None:
    data_dir = server_factory.root / f"server{len(server_factory.servers)}"
    shutil.copytree(tiny_model_dir, data_dir / "models" / "openft-tiny")
    fake = FakeVLLM(base_path=os.path.realpath(data_dir / "models" / "openft-tiny")).start()
    try:
        server = server_factory(inference_backend="vllm", inference_vllm_url=fake.url, **TEST_SETTINGS)
        client = server.client()
        messages = [{"role": "user", "content": "Hi"}]
        completion = client.chat.completions.create(model="openft-tiny", messages=messages)
        assert completion.choices[0].message.content == REPLY
        assert completion.usage.completion_tokens == len(REPLY)
        chunks = client.chat.completions.create(model="openft-tiny", messages=messages, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    finally:
        fake.stop()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="openft-tiny", messages=messages)
    assert caught.value.status_code == 502 and "vLLM" in caught.value.message
