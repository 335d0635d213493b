"""Pure ASGI middleware: request ids on every response, URLs with NUL characters and JSON bodies with
lone surrogates refused."""

from __future__ import annotations

import json
import secrets
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openft.data.surrogates import lone_surrogate_field, lone_surrogate_message


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(16)
        scope["openft.request_id"] = request_id  # for the 500 handler, which runs outside this middleware

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


class RejectNulMiddleware:
    """A NUL character in the path or query is refused up front with a 400.

    PostgreSQL cannot store or compare NUL and SQLite can, so without this the same request would get
    different answers on the two databases.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_nul(scope):
            await _send_400(send, "The URL contains a NUL character (%00); remove it.", param=None)
            return
        await self.app(scope, receive, send)


class RejectLoneSurrogatesMiddleware:
    """A JSON body with an unpaired UTF-16 surrogate (`"\\ud800"`) anywhere is refused with a 400 naming
    the field. Such a string is not Unicode text: it fails wherever it is encoded (the database, a
    tokenizer), far from the request, as a 500. Multipart uploads are not JSON and stream past untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        field = _lone_surrogate_field(body)
        if field is not None:
            await _send_400(send, lone_surrogate_message(field), param=field or None)
            return
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return bool(value.split(b";", 1)[0].strip().lower() == b"application/json")
    return False


def _lone_surrogate_field(body: bytes) -> str | None:
    # Only a \uD800-\uDFFF escape can decode to one (raw UTF-8 cannot carry one): a cheap test first.
    if b"\\ud" not in body and b"\\uD" not in body:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None  # not JSON: the route's own parsing says so
    return lone_surrogate_field(value)


async def _send_400(send: Send, message: str, *, param: str | None) -> None:
    envelope = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}
    headers = [(b"content-type", b"application/json"), (b"x-should-retry", b"false")]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(envelope).encode()})


def _has_nul(scope: Scope) -> bool:
    raw_path = scope.get("raw_path") or scope.get("path", "").encode()
    return b"\x00" in unquote_to_bytes(raw_path) or b"\x00" in unquote_to_bytes(
        scope.get("query_string", b"")
    )
