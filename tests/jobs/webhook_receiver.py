"""A local HTTP receiver for webhook tests: records every request, can answer 500 a few times first,
or hold every request unanswered until released."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


# Webhooks go to public addresses only; servers in tests allow their loopback receivers explicitly.
ALLOW_LOOPBACK_RECEIVERS: dict[str, object] = {"webhook_allowed_hosts": ["127.0.0.1"]}


@dataclass
class WebhookReceiver:
    n_failures: int = 0
    hang: bool = False
    tls: ssl.SSLContext | None = None  # serve HTTPS with this (server-side) context
    requests: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hooks"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                failing = len(receiver.requests) <= receiver.n_failures
                if receiver.hang:
                    receiver.released.wait(timeout=120)
                self.send_response(500 if failing else 200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_for(self, n_requests: int, timeout_s: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < n_requests:
            assert time.monotonic() < deadline, (
                f"{len(self.requests)} of {n_requests} webhook requests arrived"
            )
            time.sleep(0.05)
        return self.requests
