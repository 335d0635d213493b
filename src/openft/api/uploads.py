"""HTTP for /v1/uploads: create, add parts (streamed to disk), complete, cancel."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from openft.api.deps import Context, CurrentProject
from openft.api.multipart import stream_form
from openft.api.openapi import BINARY, multipart_body
from openft.errors import InvalidRequest
from openft.schemas.files import CompleteUploadRequest, CreateUploadRequest, UploadObject, UploadPartObject
from openft.services import uploads as upload_service

router = APIRouter()


@router.post("/uploads", response_model=UploadObject)
def create_upload(body: CreateUploadRequest, ctx: Context, project: CurrentProject) -> UploadObject:
    return upload_service.create_upload(ctx, project, body)


@router.post(
    "/uploads/{upload_id}/parts",
    response_model=UploadPartObject,
    openapi_extra=multipart_body(["data"], {"data": BINARY}),
)
async def add_part(
    upload_id: str, request: Request, ctx: Context, project: CurrentProject
) -> UploadPartObject:
    await run_in_threadpool(upload_service.check_upload_accepts_parts, ctx, project, upload_id)
    form = await stream_form(
        request, file_field="data", new_writer=lambda: upload_service.new_part_writer(ctx)
    )
    try:
        if form.writer is None:
            raise InvalidRequest("Missing required parameter: 'data'.", param="data")
        if form.too_large:
            raise upload_service.part_too_large_error(ctx)
        blob = form.writer.commit()
    except BaseException:
        form.discard()
        raise
    return await run_in_threadpool(upload_service.add_part, ctx, project, upload_id, blob)


@router.post("/uploads/{upload_id}/complete", response_model=UploadObject)
def complete_upload(
    upload_id: str, body: CompleteUploadRequest, ctx: Context, project: CurrentProject
) -> UploadObject:
    return upload_service.complete_upload(ctx, project, upload_id, body.part_ids, body.md5)


@router.post("/uploads/{upload_id}/cancel", response_model=UploadObject)
def cancel_upload(upload_id: str, ctx: Context, project: CurrentProject) -> UploadObject:
    return upload_service.cancel_upload(ctx, project, upload_id)
