"""The Uploads verbs: a large file sent in parts (each ≤ 64 MB, ≤ 8 GB in all), then assembled."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from openft import ids
from openft.errors import InvalidRequest, no_such_object
from openft.schemas.files import CreateUploadRequest, UploadObject, UploadPartObject
from openft.services.context import Project, ServiceContext, now
from openft.services.files import (
    register_file,
    to_file_object,
    validate_expires_after,
    validate_filename,
    validate_purpose,
)
from openft.store.blobs import BlobWriter, StoredBlob
from openft.store.tables import FileRow, UploadPartRow, UploadRow


def create_upload(ctx: ServiceContext, project: Project, request: CreateUploadRequest) -> UploadObject:
    purpose = validate_purpose(request.purpose)
    validate_filename(request.filename, purpose, param="filename")
    if len(request.mime_type) > 128 or "\x00" in request.mime_type:
        raise InvalidRequest(
            "mime_type must be at most 128 characters, without NUL characters.", param="mime_type"
        )
    if not 0 <= request.bytes <= ctx.settings.max_upload_bytes:
        raise InvalidRequest(
            f"bytes must be between 0 and {ctx.settings.max_upload_bytes} (8 GB); got {request.bytes}.",
            param="bytes",
        )
    expires_after_s = None
    if request.expires_after is not None:
        expires_after_s = validate_expires_after(request.expires_after.anchor, request.expires_after.seconds)
    created_at = now()
    row = UploadRow(
        id=ids.new_upload_id(),
        project_id=project.id,
        filename=request.filename,
        purpose=purpose,
        bytes=request.bytes,
        mime_type=request.mime_type,
        status="pending",
        file_expires_after_s=expires_after_s,
        created_at=created_at,
        expires_at=created_at + ctx.settings.upload_ttl_s,
    )
    with ctx.db.session() as session:
        session.add(row)
    return _to_upload_object(row)


def new_part_writer(ctx: ServiceContext) -> BlobWriter:
    return ctx.upload_parts.writer(limit_bytes=ctx.settings.max_part_bytes)


def part_too_large_error(ctx: ServiceContext) -> InvalidRequest:
    return InvalidRequest(
        f"Upload parts may be at most {ctx.settings.max_part_bytes} bytes (64 MB); split the file into "
        "smaller parts.",
        param="data",
    )


def add_part(ctx: ServiceContext, project: Project, upload_id: str, blob: StoredBlob) -> UploadPartObject:
    try:
        with ctx.db.session() as session:
            upload = _pending_upload(session, project, upload_id, action="add parts to")
            part = UploadPartRow(
                id=ids.new_part_id(),
                upload_id=upload.id,
                bytes=blob.bytes,
                blob_name=blob.name,
                created_at=now(),
            )
            session.add(part)
    except BaseException:
        ctx.upload_parts.delete(blob.name)
        raise
    return UploadPartObject(id=part.id, created_at=part.created_at, upload_id=upload_id)


def check_upload_accepts_parts(ctx: ServiceContext, project: Project, upload_id: str) -> None:
    """Fail before a part's bytes are read when the upload cannot take them."""
    with ctx.db.session() as session:
        _pending_upload(session, project, upload_id, action="add parts to")


def complete_upload(
    ctx: ServiceContext, project: Project, upload_id: str, part_ids: list[str], md5: str | None
) -> UploadObject:
    with ctx.db.session() as session:
        upload = _pending_upload(session, project, upload_id, action="complete")
        parts = {
            p.id: p
            for p in session.scalars(select(UploadPartRow).where(UploadPartRow.upload_id == upload_id))
        }
    ordered = _ordered_parts(parts, part_ids)
    total = sum(p.bytes for p in ordered)
    if total != upload.bytes:
        raise InvalidRequest(
            f"The parts add up to {total} bytes, but the upload was created with bytes={upload.bytes}. "
            "Send the missing parts or create a new upload with the right size.",
            param="part_ids",
        )
    blob = ctx.files.write_all(chunk for p in ordered for chunk in ctx.upload_parts.iter_bytes(p.blob_name))
    if md5 is not None and md5.lower() != blob.md5:
        ctx.files.delete(blob.name)
        raise InvalidRequest(
            f"The md5 checksum {md5} does not match the assembled file (md5 {blob.md5}).", param="md5"
        )
    file_object = register_file(
        ctx,
        project,
        filename=upload.filename,
        purpose=upload.purpose,
        blob=blob,
        expires_after_s=upload.file_expires_after_s,
    )
    _finish(ctx, upload_id, status="completed", file_id=file_object.id)
    return retrieve_upload(ctx, project, upload_id)


def cancel_upload(ctx: ServiceContext, project: Project, upload_id: str) -> UploadObject:
    with ctx.db.session() as session:
        _pending_upload(session, project, upload_id, action="cancel")
    _finish(ctx, upload_id, status="cancelled", file_id=None)
    return retrieve_upload(ctx, project, upload_id)


def retrieve_upload(ctx: ServiceContext, project: Project, upload_id: str) -> UploadObject:
    with ctx.db.session() as session:
        row = session.get(UploadRow, upload_id)
        if row is None or row.project_id != project.id:
            raise no_such_object("Upload", upload_id, "upload_id")
        file_row = session.scalar(select(FileRow).where(FileRow.id == row.file_id)) if row.file_id else None
        return _to_upload_object(row, file_row)


def _pending_upload(session: Session, project: Project, upload_id: str, *, action: str) -> UploadRow:
    row = session.get(UploadRow, upload_id)
    if row is None or row.project_id != project.id:
        raise no_such_object("Upload", upload_id, "upload_id")
    if row.status == "pending" and row.expires_at <= now():
        row.status = "expired"
    if row.status != "pending":
        raise InvalidRequest(
            f"Cannot {action} upload {upload_id}: its status is '{row.status}'. Only a pending upload "
            "(created less than an hour ago, not completed or cancelled) accepts this.",
            param="upload_id",
        )
    return row


def _ordered_parts(parts: dict[str, UploadPartRow], part_ids: list[str]) -> list[UploadPartRow]:
    if not part_ids:
        raise InvalidRequest("part_ids must list at least one part, in order.", param="part_ids")
    if len(set(part_ids)) != len(part_ids):
        raise InvalidRequest("part_ids lists a part more than once.", param="part_ids")
    unknown = [p for p in part_ids if p not in parts]
    if unknown:
        raise InvalidRequest(f"Part {unknown[0]} does not belong to this upload.", param="part_ids")
    return [parts[p] for p in part_ids]


def _finish(ctx: ServiceContext, upload_id: str, *, status: str, file_id: str | None) -> None:
    with ctx.db.session() as session:
        row = session.get(UploadRow, upload_id)
        assert row is not None
        row.status = status
        row.file_id = file_id
        parts = list(session.scalars(select(UploadPartRow).where(UploadPartRow.upload_id == upload_id)))
        for part in parts:
            session.delete(part)
    for part in parts:
        ctx.upload_parts.delete(part.blob_name)


def _to_upload_object(row: UploadRow, file_row: FileRow | None = None) -> UploadObject:
    status = "expired" if row.status == "pending" and row.expires_at <= now() else row.status
    return UploadObject(
        id=row.id,
        bytes=row.bytes,
        created_at=row.created_at,
        expires_at=row.expires_at,
        filename=row.filename,
        purpose=row.purpose,
        status=status,  # type: ignore[arg-type]
        file=to_file_object(file_row) if file_row is not None else None,
    )
