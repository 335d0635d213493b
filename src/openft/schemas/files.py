"""Files and Uploads objects (reference §2)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# Purposes a client may upload with; `*_output` and `fine-tune-results` are made by the server only.
CREATE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
# Purposes whose content cannot be downloaded (OpenAI answers 400).
UNDOWNLOADABLE_PURPOSES = ("assistants", "user_data")

FileStatus = Literal["uploaded", "processed", "error"]
UploadStatus = Literal["pending", "completed", "cancelled", "expired"]


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    expires_at: int | None
    filename: str
    purpose: str
    status: FileStatus
    status_details: str | None


class ExpiresAfter(BaseModel):
    anchor: Literal["created_at"]
    seconds: int


class CreateUploadRequest(BaseModel):
    filename: str
    # Published as an enum; checked by the service, whose message lists the allowed purposes.
    purpose: str = Field(json_schema_extra={"enum": list(CREATE_PURPOSES)})
    bytes: int
    mime_type: str
    expires_after: ExpiresAfter | None = None


class CompleteUploadRequest(BaseModel):
    part_ids: list[str]
    md5: str | None = None


class UploadObject(BaseModel):
    id: str
    object: Literal["upload"] = "upload"
    bytes: int
    created_at: int
    expires_at: int
    filename: str
    purpose: str
    status: UploadStatus
    file: FileObject | None


class UploadPartObject(BaseModel):
    id: str
    object: Literal["upload.part"] = "upload.part"
    created_at: int
    upload_id: str
