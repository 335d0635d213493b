"""The data checker's full report for an uploaded fine-tune file (a documented extension endpoint)."""

from __future__ import annotations

from typing import Any

from openft.data import check_file
from openft.errors import InvalidRequest
from openft.services.context import Project, ServiceContext
from openft.services.files import get_file_row


def check_uploaded_file(ctx: ServiceContext, project: Project, file_id: str) -> dict[str, Any]:
    """Every error (line, message, field), statistics and lint findings; no token counts, since the
    server does not load tokenizers (`openft data check --model` adds them)."""
    row = get_file_row(ctx, project, file_id)
    if row.purpose != "fine-tune":
        raise InvalidRequest(
            f"File {file_id} has purpose '{row.purpose}'; only fine-tune files can be checked.",
            param="file_id",
        )
    report = check_file(ctx.files.path(row.blob_name)).to_dict()
    report["training"]["path"] = row.filename  # never the server's own blob path
    return {"object": "file.check", "file_id": row.id, **report}
