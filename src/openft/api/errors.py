"""Every error leaves the server as OpenAI's envelope: {"error": {message, type, param, code}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match

from openft.errors import OpenFTError

log = logging.getLogger("openft.api")
HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def error_response(
    status_code: int,
    message: str,
    *,
    type_: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status_code, headers=headers)


async def _openft_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OpenFTError)
    # 4xx answers are final: tell the SDK not to retry them (it would retry 409/429); a 429 is the
    # one that is worth retrying after a while.
    headers = {"retry-after": "1"} if exc.status_code == 429 else {"x-should-retry": "false"}
    return JSONResponse(exc.envelope(), status_code=exc.status_code, headers=headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "Invalid request"}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
    param = ".".join(loc) or None
    message = f"Invalid value for '{param}': {first.get('msg')}." if param else f"{first.get('msg')}."
    if first.get("type") == "json_invalid":
        message, param = "We could not parse the JSON body of your request. Send valid JSON.", None
    elif first.get("type") == "missing" and param:
        message = f"Missing required parameter: '{param}'."
    return error_response(
        400, message, type_="invalid_request_error", param=param, headers={"x-should-retry": "false"}
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = {name: value for name, value in (exc.headers or {}).items() if name.lower() != "allow"}
    if exc.status_code == 404:
        message = f"Invalid URL ({request.method} {request.url.path})"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed for {request.url.path}"
        headers["allow"] = ", ".join(allowed_methods(request))
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, type_="invalid_request_error", headers=headers or None)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path. Starlette's own Allow names only the first route
    that matched the path, and GET and DELETE on /v1/files/{file_id} are two routes."""
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500,
        "The server had an error while processing your request. The error is logged; "
        "please retry or report it.",
        type_="server_error",
        headers={"x-request-id": request.scope.get("openft.request_id", "")},
    )


async def _client_disconnected(_request: Request, _exc: Exception) -> Response:
    return Response(status_code=400)  # the client is gone: nobody reads this, and it is no server error


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientDisconnect, _client_disconnected)
    app.add_exception_handler(OpenFTError, _openft_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
