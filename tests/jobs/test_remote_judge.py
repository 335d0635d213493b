"""Model graders whose judge this server does not serve (the `gpt-4o-2024-08-06` of OpenAI's examples)
ask the operator's OpenAI-compatible judge server (OPENFT_JUDGE_BASE_URL): through the alpha graders
endpoint and in a reinforcement job's training process. The judge server here is a small stand-in that
answers every chat completion with "0.7" and records what it was asked."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, ServerFactory
from tests.jobs.conftest import start_job_server, upload_examples, wait_for_job

JUDGED = {
    "type": "score_model",
    "name": "judged",
    "model": "gpt-4o-2024-08-06",
    "input": [
        {"role": "user", "content": "Score from 0 to 1: {{sample.output_text}} (expected {{item.reply}})"}
    ],
    "range": [0, 1],
}


class JudgeServer:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, Any], str | None]] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                seen.append((body, self.headers.get("Authorization")))
                answer = json.dumps(
                    {
                        "object": "chat.completion",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "0.7"}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
                    }
                ).encode()
                self.send_response(200 if self.path == "/v1/chat/completions" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def judge_server() -> Iterator[JudgeServer]:
    server = JudgeServer()
    yield server
    server.http.shutdown()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, judge_server: JudgeServer
) -> Iterator[LiveServer]:
    factory = ServerFactory(tmp_path_factory.mktemp("remote-judge"))
    yield start_job_server(
        factory,
        tiny_model_dir,
        inference_cpu_threads=1,
        judge_base_url=judge_server.url,
        judge_api_key="sk-judge",
    )
    factory.close()


def test_the_alpha_run_endpoint_asks_the_judge_server(server: LiveServer, judge_server: JudgeServer) -> None:
    before = len(judge_server.requests)
    result = server.client().fine_tuning.alpha.graders.run(
        grader=JUDGED,  # type: ignore[arg-type]
        model_sample="Refunded.",
        item={"reply": "The order was refunded."},
    )
    assert result.reward == pytest.approx(0.7)
    assert not any(value is True for value in result.metadata.errors.model_dump().values())
    (body, authorization), *_ = judge_server.requests[before:]
    assert body["model"] == "gpt-4o-2024-08-06" and authorization == "Bearer sk-judge"
    assert body["messages"] == [
        {"role": "user", "content": "Score from 0 to 1: Refunded. (expected The order was refunded.)"}
    ]


def test_a_reinforcement_job_asks_the_judge_server_from_its_training_process(
    server: LiveServer, judge_server: JudgeServer
) -> None:
    client = server.client()
    prompts = [{"messages": [{"role": "user", "content": f"Reply {i}"}], "reply": "ok"} for i in range(4)]
    before = len(judge_server.requests)
    job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=upload_examples(client, prompts, "prompts.jsonl"),
        method={
            "type": "reinforcement",
            "reinforcement": {
                "grader": JUDGED,
                "hyperparameters": {"n_epochs": 1, "batch_size": 4, "reasoning_effort": "low"},
            },
        },
    )
    done = wait_for_job(client, job.id)
    assert done.status == "succeeded", done.error
    (metrics,) = [e.data for e in client.fine_tuning.jobs.list_events(job.id).data if e.type == "metrics"]
    data: Any = metrics
    assert data["train_grader_error_rate"] == 0 and data["train_reward_mean"] == pytest.approx(0.7)
    asked = judge_server.requests[before:]
    assert len(asked) >= 8 and {body["model"] for body, _ in asked} == {"gpt-4o-2024-08-06"}
