"""A FAKE vLLM server for tests: vLLM cannot run on this CPU-only machine, so this stands in for it.

It answers the three HTTP endpoints openft's vLLM backend uses, in vLLM's shapes, on loopback:
GET /v1/models, POST /v1/load_lora_adapter and POST /v1/completions (streamed). It generates nothing:
every answer is REPLY (one token per character, cut at max_tokens), and it records what it was sent so
that tests can check the registration and the forwarded request. It is not a model of vLLM's behaviour
beyond those shapes.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLY = "Hello from vLLM"
BASE_NAME = "served-base"


@dataclass
class FakeVLLM:
    base_path: str
    loaded: dict[str, str] = field(default_factory=dict)  # lora_name -> lora_path
    load_calls: list[dict[str, Any]] = field(default_factory=list)
    completion_calls: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeVLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/v1/models":
                    return self._json(404, {"error": {"message": "not found"}})
                models = [{"id": BASE_NAME, "object": "model", "root": fake.base_path, "parent": None}]
                models += [{"id": n, "root": p, "parent": BASE_NAME} for n, p in fake.loaded.items()]
                self._json(200, {"object": "list", "data": models})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if self.path == "/v1/load_lora_adapter":
                    fake.load_calls.append(body)
                    if body["lora_name"] in fake.loaded:
                        message = f"The lora adapter '{body['lora_name']}' has already been loaded."
                        return self._json(400, {"error": {"message": message}})
                    fake.loaded[body["lora_name"]] = body["lora_path"]
                    return self._text(200, f"Success: LoRA adapter '{body['lora_name']}' added successfully.")
                if self.path == "/v1/completions":
                    fake.completion_calls.append(body)
                    if body["model"] not in (BASE_NAME, *fake.loaded):
                        return self._json(
                            404, {"error": {"message": f"The model `{body['model']}` does not exist."}}
                        )
                    return self._stream(body)
                self._json(404, {"error": {"message": "not found"}})

            def _stream(self, body: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                text = REPLY[: body["max_tokens"]]
                finish = "length" if len(REPLY) > body["max_tokens"] else "stop"
                for index in range(body.get("n") or 1):
                    for i, char in enumerate(text):
                        logprobs = {
                            "tokens": [char],
                            "token_logprobs": [-0.25],
                            "top_logprobs": [{char: -0.25, "?": -2.0}],
                            "text_offset": [i],
                        }
                        last = i == len(text) - 1
                        choice = {"index": index, "text": char, "logprobs": logprobs}
                        choice["finish_reason"] = finish if last else None
                        self._event({"id": "cmpl-fake", "object": "text_completion", "choices": [choice]})
                self.wfile.write(b"data: [DONE]\n\n")

            def _event(self, payload: dict[str, Any]) -> None:
                self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
                self.wfile.flush()

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _text(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
