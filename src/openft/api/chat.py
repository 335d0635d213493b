"""HTTP for /v1/chat/completions and /v1/completions (JSON, or server-sent events with `stream`).

Preparing a request touches the database and the tokenizer, so it runs in a worker thread; generation
is awaited from the engine, so the event loop never waits on a model. A client that hangs up stops its
generation (streams when the next chunk cannot be sent, other requests by polling the connection). The
engine is the server process's (api/deps.py), made on the first request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from openft.api.deps import Context, CurrentProject, EngineDep
from openft.api.openapi import error_responses
from openft.inference.types import Engine
from openft.schemas.chat import ChatCompletion, ChatCompletionRequest, Completion, CompletionRequest
from openft.services import inference

router = APIRouter()
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
DISCONNECT_POLL_S = 0.1
CLIENT_CLOSED_REQUEST = 499  # nobody reads it: the client has gone


def _answer(model: type, description: str) -> dict[int | str, dict[str, Any]]:
    """JSON, or with `stream: true` Server-Sent Events; 502 when a vLLM backend cannot be reached."""
    sse = {"text/event-stream": {"schema": {"type": "string"}}}
    return {200: {"model": model, "description": description, "content": sse}} | error_responses(502)


@router.post(
    "/chat/completions",
    response_model=None,
    responses=_answer(ChatCompletion, "The completion, or its chunks as Server-Sent Events."),
)
async def create_chat_completion(
    request: Request, body: ChatCompletionRequest, ctx: Context, project: CurrentProject, engine: EngineDep
) -> ChatCompletion | Completion | Response:
    prepared = await run_in_threadpool(inference.prepare_chat, ctx, engine, project, body)
    return await _respond(request, engine, prepared, bool(body.stream))


@router.post(
    "/completions",
    response_model=None,
    responses=_answer(Completion, "The completion, or its chunks as Server-Sent Events."),
)
async def create_completion(
    request: Request, body: CompletionRequest, ctx: Context, project: CurrentProject, engine: EngineDep
) -> ChatCompletion | Completion | Response:
    prepared = await run_in_threadpool(inference.prepare_completion, ctx, engine, project, body)
    return await _respond(request, engine, prepared, bool(body.stream))


async def _respond(
    request: Request, engine: Engine, prepared: inference.Prepared, stream: bool
) -> ChatCompletion | Completion | Response:
    if stream:
        body = await inference.stream(engine, prepared)
        return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)
    return await _unless_disconnected(request, inference.run(engine, prepared))


async def _unless_disconnected(
    request: Request, work: Coroutine[Any, Any, ChatCompletion | Completion]
) -> ChatCompletion | Completion | Response:
    """Await `work`, cancelling it (and so its generation) when the client hangs up."""
    task = asyncio.create_task(work)
    try:
        while not (await asyncio.wait({task}, timeout=DISCONNECT_POLL_S))[0]:
            if await request.is_disconnected():
                return Response(status_code=CLIENT_CLOSED_REQUEST)
        return task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
