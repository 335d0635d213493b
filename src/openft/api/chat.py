"""HTTP for /v1/chat/completions and /v1/completions (JSON, or server-sent events with `stream`).

Preparing a request touches the database and the tokenizer, so it runs in a worker thread; generation
is awaited from the engine, so the event loop never waits on a model. The engine is created on the
first request and closed with the app.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from openft.api.deps import Context, CurrentProject
from openft.schemas.chat import ChatCompletion, ChatCompletionRequest, Completion, CompletionRequest
from openft.services import inference

router = APIRouter()
_engine_lock = threading.Lock()
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def get_engine(request: Request, ctx: Context) -> Any:
    state = request.app.state
    with _engine_lock:
        if getattr(state, "inference_engine", None) is None:
            state.inference_engine = inference.new_engine(ctx.settings)
        return state.inference_engine


def close_engine(app: FastAPI) -> None:
    engine = getattr(app.state, "inference_engine", None)
    if engine is not None:
        engine.close()
        app.state.inference_engine = None


EngineDep = Annotated[Any, Depends(get_engine)]


@router.post("/chat/completions", response_model=None)
async def create_chat_completion(
    body: ChatCompletionRequest, ctx: Context, project: CurrentProject, engine: EngineDep
) -> ChatCompletion | Completion | StreamingResponse:
    prepared = await run_in_threadpool(inference.prepare_chat, ctx, engine, project, body)
    return await _respond(engine, prepared, bool(body.stream))


@router.post("/completions", response_model=None)
async def create_completion(
    body: CompletionRequest, ctx: Context, project: CurrentProject, engine: EngineDep
) -> ChatCompletion | Completion | StreamingResponse:
    prepared = await run_in_threadpool(inference.prepare_completion, ctx, engine, project, body)
    return await _respond(engine, prepared, bool(body.stream))


async def _respond(
    engine: Any, prepared: inference.Prepared, stream: bool
) -> ChatCompletion | Completion | StreamingResponse:
    if stream:
        body = await inference.stream(engine, prepared)
        return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)
    return await inference.run(engine, prepared)
