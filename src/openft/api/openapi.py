"""What /openapi.json publishes beyond what FastAPI infers from the handlers, so the schema is true.

- Error answers: every route may answer 400, 401 and 404 with OpenAI's envelope (one declaration,
  given to every router in app.py); routes add the rarer ones with `error_responses(...)`.
- No 422: validation errors leave as 400 (api/errors.py), so FastAPI's 422 entries are dropped.
- Bodies and bounds the handlers or services check themselves: multipart forms (parsed by streaming,
  so FastAPI cannot see them), `limit` ranges and enums whose refusal keeps the service's message.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query

from openft.schemas.common import ErrorResponse

ERROR_DESCRIPTIONS = {
    400: "Invalid request: `error.param` names the parameter and `error.message` says what to fix.",
    401: "No API key, or one this server does not know.",
    404: "No such object (or route) in the caller's project.",
    409: "The object's state does not allow this request now.",
    429: "Too many requests of this kind at once; retry later.",
    502: "The inference backend could not be reached.",
    503: "The server cannot serve this request now; retry later.",
}


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these status codes, each with OpenAI's error envelope."""
    return {code: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[code]} for code in status_codes}


DEFAULT_ERRORS = error_responses(400, 401, 404)


def page_limit(default: int, maximum: int) -> Any:
    """A list's `limit` query parameter. The bounds are published, and enforced by the service, whose
    message ("limit must be between 1 and N.") says more than a generic validation error would."""
    return Query(default, json_schema_extra={"minimum": 1, "maximum": maximum})


def one_of(default: str | None, values: tuple[str, ...]) -> Any:
    """A query parameter whose allowed values the service checks (with its own message)."""
    return Query(default, json_schema_extra={"enum": list(values)})


def multipart_body(required: list[str], properties: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`openapi_extra` declaring the multipart/form-data body of a handler that streams it itself."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


BINARY = {"type": "string", "format": "binary"}


def content_response(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """A 200 answer that is not JSON (file content, an HTML report)."""
    return {200: {"description": description, "content": {media_type: {"schema": BINARY}}}}


def install_openapi(app: FastAPI) -> None:
    """Publish FastAPI's schema without the 422 answers and validation-error models it adds itself."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
