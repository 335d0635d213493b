"""HTTP for model export (an openft extension): GET /v1/models/{model}/export?format=peft|merged|gguf.

The export is written before the response starts, so a bad request or an unknown model gets OpenAI's
error envelope; the archive then streams as a tar file.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from openft.api.deps import Context, CurrentProject
from openft.services import exports as export_service

router = APIRouter(prefix="/models")


@router.get(
    "/{model:path}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-tar": {}}, "description": "The export as a tar archive."}},
)
def export_model(
    model: str,
    ctx: Context,
    project: CurrentProject,
    format: str | None = None,
    gguf_type: str | None = None,
    dtype: str | None = None,
    check: bool = False,
) -> StreamingResponse:
    archive = export_service.export_archive(ctx, project, model, format, gguf_type, dtype, check)
    headers = {
        "content-disposition": f'attachment; filename="{archive.file_name}"',
        "content-length": str(archive.size),
    }
    if archive.check is not None:
        headers["x-openft-export-check"] = archive.check  # details in the archive's check.json
    return StreamingResponse(archive.chunks(), media_type="application/x-tar", headers=headers)
