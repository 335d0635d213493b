"""HTTP for /v1/fine_tuning/jobs: create, list, retrieve, cancel, pause, resume, events, checkpoints, and
the evaluation that ends a job with a validation file (an openft extension)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from openft.api.deps import Context, CurrentProject, WakeWorker
from openft.api.openapi import content_response, page_limit
from openft.schemas.common import CursorPage
from openft.schemas.jobs import (
    TERMINAL_STATUSES,
    CreateJobRequest,
    FineTuningJob,
    JobCheckpoint,
    JobEventList,
    JobList,
)
from openft.services import job_evaluations, job_events
from openft.services import jobs as job_service
from openft.services.context import Project, ServiceContext
from openft.services.pages import MAX_PAGE_LIMIT

router = APIRouter(prefix="/fine_tuning/jobs")

STREAM_POLL_S = 0.5


@router.post("", response_model=FineTuningJob)
def create_job(
    body: CreateJobRequest, ctx: Context, project: CurrentProject, wake_worker: WakeWorker
) -> FineTuningJob:
    job = job_service.create_job(ctx, project, body)
    wake_worker()  # the in-process worker, if any, picks the job up now rather than at its next poll
    return job


@router.get("", response_model=JobList)
def list_jobs(
    request: Request,
    ctx: Context,
    project: CurrentProject,
    after: str | None = None,
    limit: int = page_limit(20, job_service.MAX_LIST_LIMIT),
) -> JobList:
    # The SDK sends the metadata filter as bracketed keys: metadata[k]=v.
    metadata = {
        key[len("metadata[") : -1]: value
        for key, value in request.query_params.items()
        if key.startswith("metadata[") and key.endswith("]")
    }
    return job_service.list_jobs(ctx, project, after=after, limit=limit, metadata=metadata)


@router.get("/{job_id}", response_model=FineTuningJob)
def retrieve_job(job_id: str, ctx: Context, project: CurrentProject) -> FineTuningJob:
    return job_service.retrieve_job(ctx, project, job_id)


@router.post("/{job_id}/cancel", response_model=FineTuningJob)
def cancel_job(job_id: str, ctx: Context, project: CurrentProject) -> FineTuningJob:
    return job_service.cancel_job(ctx, project, job_id)


@router.post("/{job_id}/pause", response_model=FineTuningJob)
def pause_job(job_id: str, ctx: Context, project: CurrentProject) -> FineTuningJob:
    return job_service.pause_job(ctx, project, job_id)


@router.post("/{job_id}/resume", response_model=FineTuningJob)
def resume_job(job_id: str, ctx: Context, project: CurrentProject, wake_worker: WakeWorker) -> FineTuningJob:
    job = job_service.resume_job(ctx, project, job_id)
    wake_worker()
    return job


EVENTS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "model": JobEventList,
        "description": "A page of events, or with `stream=true` Server-Sent Events until the job ends.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.get("/{job_id}/events", response_model=None, responses=EVENTS_RESPONSE)
async def list_events(
    job_id: str,
    request: Request,
    ctx: Context,
    project: CurrentProject,
    after: str | None = None,
    limit: int = page_limit(20, MAX_PAGE_LIMIT),
    stream: bool = False,
) -> JobEventList | StreamingResponse:
    if not stream:
        return await run_in_threadpool(job_events.list_events, ctx, project, job_id, after=after, limit=limit)
    # Extension: Server-Sent Events, oldest first, replaying what came after Last-Event-ID.
    last_event_id = request.headers.get("last-event-id") or after
    start_seq = await run_in_threadpool(job_events.event_seq, ctx, last_event_id) if last_event_id else 0
    await run_in_threadpool(job_events.events_since, ctx, project, job_id, start_seq)  # 404 before streaming
    return StreamingResponse(
        _event_stream(request, ctx, project, job_id, start_seq),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache"},
    )


async def _event_stream(
    request: Request, ctx: ServiceContext, project: Project, job_id: str, seq: int
) -> AsyncIterator[str]:
    while True:
        events, status = await run_in_threadpool(job_events.events_since, ctx, project, job_id, seq)
        for event_seq, event in events:
            yield f"id: {event.id}\nevent: {event.type}\ndata: {event.model_dump_json()}\n\n"
            seq = event_seq
        if status in TERMINAL_STATUSES and not events:
            yield f"event: end\ndata: {json.dumps({'status': status})}\n\n"
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(STREAM_POLL_S)


@router.get("/{job_id}/checkpoints", response_model=CursorPage[JobCheckpoint])
def list_checkpoints(
    job_id: str,
    ctx: Context,
    project: CurrentProject,
    after: str | None = None,
    limit: int = page_limit(10, MAX_PAGE_LIMIT),
) -> CursorPage[JobCheckpoint]:
    return job_events.list_checkpoints(ctx, project, job_id, after=after, limit=limit)


@router.get("/{job_id}/evaluation", response_model=None)
def get_evaluation(job_id: str, ctx: Context, project: CurrentProject) -> dict[str, Any]:
    """openft extension: base against fine-tuned on the validation file, every example and score."""
    return job_evaluations.get_evaluation(ctx, project, job_id)


@router.get(
    "/{job_id}/evaluation/report",
    response_class=FileResponse,
    responses=content_response("text/html", "The evaluation as one HTML page."),
)
def get_evaluation_report(job_id: str, ctx: Context, project: CurrentProject) -> FileResponse:
    """openft extension: the same evaluation as a self-contained HTML page."""
    path = job_evaluations.evaluation_report_path(ctx, project, job_id)
    return FileResponse(path, media_type="text/html; charset=utf-8")
