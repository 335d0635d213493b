"""Through the HTTP API: a request joins a batch that is already generating, and a client that hangs up on a
non-streaming request stops its generation."""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from openai import OpenAI

from tests.conftest import LiveServer, ServerFactory
from tests.inference.conftest import TEST_SETTINGS

MODEL = "openft-tiny"
HI = [{"role": "user", "content": "Hi"}]
# Never ends on its own: "a" (byte 97) outweighs the end-of-turn token.
ENDLESS = {"max_tokens": 2000, "logit_bias": {"97": 100}}


@pytest.fixture(scope="module")
def server(module_server_factory: ServerFactory, tiny_model_dir: Path) -> LiveServer:
    data_dir = module_server_factory.root / f"server{len(module_server_factory.servers)}"
    shutil.copytree(tiny_model_dir, data_dir / "models" / MODEL)
    return module_server_factory(**TEST_SETTINGS)


def _engine(server: LiveServer) -> Any:
    return server.root.engine.get()


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_a_request_joins_a_batch_that_is_generating(server: LiveServer) -> None:
    client: OpenAI = server.client()

    def ask() -> tuple[str | None, list[float]]:
        completion = client.chat.completions.create(
            model=MODEL, messages=HI, temperature=0, max_tokens=16, logprobs=True, top_logprobs=2
        )
        entries = completion.choices[0].logprobs.content
        return completion.choices[0].message.content, [e.logprob for e in entries]

    alone = ask()
    joined_before = _engine(server).stats().n_joined
    stream = client.chat.completions.create(model=MODEL, messages=HI, stream=True, **ENDLESS)
    with stream:
        chunks = iter(stream)
        for _ in range(3):
            next(chunks)  # the long answer is generating
        text, logprobs = ask()
        # Answered while the long one goes on (its row leaves the batch a moment after its last token).
        assert _engine(server).stats().n_joined == joined_before + 1
        assert _wait(lambda: _engine(server).stats().n_running == 1, timeout_s=1)
        assert text == alone[0] and logprobs == pytest.approx(alone[1], abs=1e-4)


def test_a_client_leaving_a_non_streaming_request_frees_its_generation_slot(server: LiveServer) -> None:
    server.client().chat.completions.create(model=MODEL, messages=HI, max_tokens=1)  # the engine is up
    body = json.dumps({"model": MODEL, "messages": HI, **ENDLESS}).encode()
    url = urlsplit(server.base_url)
    head = (
        f"POST {url.path}/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    engine = _engine(server)
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(head.encode() + body)
        assert _wait(lambda: engine.stats().n_running == 1, timeout_s=10)
    # Generating all 2000 tokens takes several seconds; the slot is free long before.
    assert _wait(lambda: engine.stats().n_running == 0, timeout_s=1.5)
    assert server.client().chat.completions.create(model=MODEL, messages=HI, max_tokens=3).usage
