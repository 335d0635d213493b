"""HTTP for /v1/files: parse, call one service verb, return the wire object."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from openft.api.deps import Context, CurrentProject
from openft.api.multipart import stream_form
from openft.api.openapi import BINARY, content_response, error_responses, multipart_body, page_limit
from openft.errors import InvalidRequest
from openft.schemas.common import CursorPage, DeletedObject
from openft.schemas.files import CREATE_PURPOSES, FileObject
from openft.services import file_checks
from openft.services import files as file_service

router = APIRouter()


FILE_FORM = multipart_body(
    ["file", "purpose"],
    {
        "file": BINARY,
        "purpose": {"type": "string", "enum": list(CREATE_PURPOSES)},
        "expires_after[anchor]": {"type": "string", "enum": ["created_at"]},
        "expires_after[seconds]": {
            "type": "integer",
            "minimum": file_service.MIN_EXPIRES_AFTER_S,
            "maximum": file_service.MAX_EXPIRES_AFTER_S,
        },
    },
)


@router.post("/files", response_model=FileObject, openapi_extra=FILE_FORM)
async def create_file(request: Request, ctx: Context, project: CurrentProject) -> FileObject:
    form = await stream_form(request, file_field="file", new_writer=lambda: file_service.new_file_writer(ctx))
    try:
        if form.writer is None:
            raise InvalidRequest("Missing required parameter: 'file'.", param="file")
        if form.too_large:
            raise InvalidRequest(
                f"File is larger than {ctx.settings.max_file_bytes} bytes (512 MB), the most one request may "
                "upload. Use the Uploads API (client.uploads.upload_file_chunked) for larger files.",
                param="file",
            )
        purpose = file_service.validate_purpose(form.fields.get("purpose"))
        filename = form.filename or "upload"
        file_service.validate_filename(filename, purpose)
        expires_after_s = file_service.validate_expires_after(
            form.fields.get("expires_after[anchor]"), _int_field(form.fields, "expires_after[seconds]")
        )
        blob = form.writer.commit()
    except BaseException:
        form.discard()
        raise
    return await run_in_threadpool(
        file_service.register_file,
        ctx,
        project,
        filename=filename,
        purpose=purpose,
        blob=blob,
        expires_after_s=expires_after_s,
    )


def _int_field(fields: dict[str, str], name: str) -> int | None:
    if name not in fields:
        return None
    try:
        return int(fields[name])
    except ValueError as exc:
        raise InvalidRequest(f"'{name}' must be an integer.", param=name) from exc


@router.get("/files", response_model=CursorPage[FileObject])
def list_files(
    ctx: Context,
    project: CurrentProject,
    purpose: str | None = None,  # a filter, any string: one no file has answers an empty list
    limit: int = page_limit(file_service.MAX_LIST_LIMIT, file_service.MAX_LIST_LIMIT),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> CursorPage[FileObject]:
    return file_service.list_files(ctx, project, purpose=purpose, limit=limit, order=order, after=after)


@router.get("/files/{file_id}", response_model=FileObject)
def retrieve_file(file_id: str, ctx: Context, project: CurrentProject) -> FileObject:
    return file_service.retrieve_file(ctx, project, file_id)


@router.get(
    "/files/{file_id}/content",
    response_class=StreamingResponse,
    responses=content_response("application/octet-stream", "The file's bytes."),
)
def file_content(file_id: str, ctx: Context, project: CurrentProject) -> StreamingResponse:
    row, chunks = file_service.open_content(ctx, project, file_id)
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={
            "content-length": str(row.bytes),
            "content-disposition": f"attachment; filename*=UTF-8''{quote(row.filename, safe='')}",
        },
    )


@router.get("/files/{file_id}/check", responses=error_responses(503))
def check_file(
    file_id: str, ctx: Context, project: CurrentProject, model: str | None = None, method: str | None = None
) -> dict[str, Any]:
    """Extension: the data checker's report for a fine-tune file (errors, statistics, lint); with
    `?model=`, token counts through that base model's tokenizer and chat template too; with
    `?method=reinforcement`, the file is checked as a reinforcement job's prompts."""
    return file_checks.check_uploaded_file(ctx, project, file_id, model, method)


@router.delete("/files/{file_id}", response_model=DeletedObject)
def delete_file(file_id: str, ctx: Context, project: CurrentProject) -> DeletedObject:
    return file_service.delete_file(ctx, project, file_id)
