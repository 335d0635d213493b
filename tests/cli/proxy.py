"""A small HTTP proxy in front of a live server that misbehaves the way networks and other servers do.

mode "drop": the first event stream is cut after `drop_after` events (the client must resume);
mode "no-stream": `stream=true` is removed, as a server without the SSE extension would ignore it.
It records every request line and its Last-Event-ID header.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import httpx

FORWARDED_REQUEST_HEADERS = ("authorization", "content-type", "accept", "last-event-id")
FORWARDED_RESPONSE_HEADERS = ("content-type", "x-request-id", "x-should-retry")


@dataclass
class Proxy:
    upstream: str  # the server's root URL, without /v1
    mode: Literal["drop", "no-stream"]
    drop_after: int = 3
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (method and path, Last-Event-ID)
    _server: ThreadingHTTPServer | None = None
    _n_streams: int = 0

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def streams(self) -> list[tuple[str, str | None]]:
        return [(line, last) for line, last in self.requests if "stream=true" in line]

    def start(self) -> Proxy:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _handler_for(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: a response ends when the connection closes, which is how the stream gets cut.
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _forward(self) -> None:
            proxy.requests.append((f"{self.command} {self.path}", self.headers.get("last-event-id")))
            path = self.path
            streaming = "stream=true" in path
            if streaming and proxy.mode == "no-stream":
                path, streaming = path.replace("stream=true", "stream=false"), False
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
            with (
                httpx.Client(timeout=60) as client,
                client.stream(self.command, proxy.upstream + path, headers=headers, content=body) as answer,
            ):
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() in FORWARDED_RESPONSE_HEADERS:
                        self.send_header(key, value)
                self.end_headers()
                if streaming:
                    self._relay_events(answer)
                else:
                    self.wfile.write(answer.read())

        def _relay_events(self, answer: httpx.Response) -> None:
            proxy._n_streams += 1
            cut = proxy.mode == "drop" and proxy._n_streams == 1
            n_events = 0
            for line in answer.iter_lines():
                self.wfile.write(line.encode() + b"\n")
                self.wfile.flush()
                n_events += line == ""
                if cut and n_events >= proxy.drop_after:
                    return

    return Handler
