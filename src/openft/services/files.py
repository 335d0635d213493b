"""The Files verbs: register an uploaded blob, list, retrieve, read, delete."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Select, or_, select

from openft import ids
from openft.data.scan import scan_jsonl
from openft.errors import InvalidRequest, no_such_object
from openft.schemas.common import CursorPage, DeletedObject
from openft.schemas.files import CREATE_PURPOSES, UNDOWNLOADABLE_PURPOSES, FileObject
from openft.services.context import Project, ServiceContext, now
from openft.services.pages import after_cursor, seq_page
from openft.store.blobs import BlobStore, BlobTooLarge, BlobWriter, StoredBlob
from openft.store.tables import FileRow, UploadPartRow, UploadRow

__all__ = ["BlobTooLarge", "BlobWriter", "StoredFile"]

BATCH_DEFAULT_TTL_S = 30 * 24 * 3600
MIN_EXPIRES_AFTER_S = 3600
MAX_EXPIRES_AFTER_S = 30 * 24 * 3600
MAX_LIST_LIMIT = 10000
MAX_FILENAME_CHARS = 512  # FileRow.filename, UploadRow.filename


@dataclass(frozen=True)
class StoredFile:
    """A file's bytes on disk, ready to be registered under a purpose."""

    store: BlobStore
    blob: StoredBlob


def new_file_writer(ctx: ServiceContext) -> BlobWriter:
    return ctx.files.writer(ctx.settings.max_file_bytes)


def validate_purpose(purpose: str | None, param: str = "purpose") -> str:
    if not purpose:
        raise InvalidRequest("Missing required parameter: 'purpose'.", param=param)
    if purpose not in CREATE_PURPOSES:
        allowed = ", ".join(f"'{p}'" for p in CREATE_PURPOSES)
        raise InvalidRequest(f"'{purpose}' is not one of {allowed} - '{param}'", param=param)
    return purpose


def validate_filename(filename: str, purpose: str, param: str = "file") -> None:
    if len(filename) > MAX_FILENAME_CHARS or "\x00" in filename:
        raise InvalidRequest(
            f"The filename must be at most {MAX_FILENAME_CHARS} characters, without NUL characters.",
            param=param,
        )
    if purpose == "fine-tune" and not filename.lower().endswith(".jsonl"):
        raise InvalidRequest(
            f"Invalid file format for Fine-Tuning API. Must be .jsonl (got filename {filename!r}). "
            "Save your training data as JSON Lines, one example per line, with a .jsonl extension.",
            param=param,
        )


def validate_expires_after(anchor: str | None, seconds: int | None) -> int | None:
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise InvalidRequest("expires_after.anchor must be 'created_at'.", param="expires_after[anchor]")
    if seconds is None or not MIN_EXPIRES_AFTER_S <= seconds <= MAX_EXPIRES_AFTER_S:
        raise InvalidRequest(
            f"expires_after.seconds must be an integer between {MIN_EXPIRES_AFTER_S} and "
            f"{MAX_EXPIRES_AFTER_S} (1 hour to 30 days).",
            param="expires_after[seconds]",
        )
    return seconds


def register_file(
    ctx: ServiceContext,
    project: Project,
    *,
    filename: str,
    purpose: str,
    blob: StoredBlob,
    expires_after_s: int | None,
) -> FileObject:
    """Give a committed blob its row; fine-tune files are parsed line by line first.

    If anything fails the blob is deleted, so a blob and its row exist together or not at all.
    """
    try:
        status, details, data_format, n_examples = "processed", None, None, None
        if purpose == "fine-tune":
            scan = scan_jsonl(ctx.files.path(blob.name))
            status = "processed" if scan.error is None else "error"
            details, data_format, n_examples = scan.error, scan.format, scan.n_examples
        created_at = now()
        if expires_after_s is None and purpose == "batch":
            expires_after_s = BATCH_DEFAULT_TTL_S
        row = FileRow(
            id=ids.new_file_id(),
            project_id=project.id,
            filename=filename,
            purpose=purpose,
            bytes=blob.bytes,
            sha256=blob.sha256,
            blob_name=blob.name,
            status=status,
            status_details=details,
            data_format=data_format,
            n_examples=n_examples,
            created_at=created_at,
            expires_at=created_at + expires_after_s if expires_after_s else None,
        )
        with ctx.db.session() as session:
            session.add(row)
        return to_file_object(row)
    except BaseException:
        ctx.files.delete(blob.name)
        raise


def to_file_object(row: FileRow) -> FileObject:
    return FileObject(
        id=row.id,
        bytes=row.bytes,
        created_at=row.created_at,
        expires_at=row.expires_at,
        filename=row.filename,
        purpose=row.purpose,
        status=row.status,  # type: ignore[arg-type]
        status_details=row.status_details,
    )


def _visible(project: Project) -> Select[FileRow]:
    """Files of this project that have not expired."""
    return select(FileRow).where(
        FileRow.project_id == project.id, or_(FileRow.expires_at.is_(None), FileRow.expires_at > now())
    )


def get_file_row(ctx: ServiceContext, project: Project, file_id: str, param: str = "id") -> FileRow:
    with ctx.db.session() as session:
        row = session.scalar(_visible(project).where(FileRow.id == file_id))
    if row is None:
        raise no_such_object("File", file_id, param)
    return row


def retrieve_file(ctx: ServiceContext, project: Project, file_id: str) -> FileObject:
    return to_file_object(get_file_row(ctx, project, file_id))


def list_files(
    ctx: ServiceContext,
    project: Project,
    *,
    purpose: str | None,
    limit: int,
    order: Literal["asc", "desc"],
    after: str | None,
) -> CursorPage[FileObject]:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}.", param="limit")
    query = _visible(project)
    if purpose:
        query = query.where(FileRow.purpose == purpose)
    with ctx.db.session() as session:
        cursor = after_cursor(session, FileRow, after, "File", FileRow.project_id == project.id)
        rows, has_more = seq_page(session, query, FileRow, after_seq=cursor, order=order, limit=limit)
    page = [to_file_object(row) for row in rows]
    return CursorPage[FileObject](
        data=page,
        first_id=page[0].id if page else None,
        last_id=page[-1].id if page else None,
        has_more=has_more,
    )


def open_content(ctx: ServiceContext, project: Project, file_id: str) -> tuple[FileRow, Iterator[bytes]]:
    row = get_file_row(ctx, project, file_id)
    if row.purpose in UNDOWNLOADABLE_PURPOSES:
        raise InvalidRequest(f"Not allowed to download files of purpose: {row.purpose}")
    return row, ctx.files.iter_bytes(row.blob_name)


def delete_file(ctx: ServiceContext, project: Project, file_id: str) -> DeletedObject:
    with ctx.db.session() as session:
        row = session.scalar(_visible(project).where(FileRow.id == file_id))
        if row is None:
            raise no_such_object("File", file_id)
        blob_name = row.blob_name
        session.delete(row)
    # Row first, then blob: a crash in between leaves an orphan blob that `sweep` removes, never a row
    # that points at nothing.
    ctx.files.delete(blob_name)
    for kept in ctx.settings.file_checks_dir.glob(f"{blob_name}.*.json"):  # services.file_checks' reports
        kept.unlink(missing_ok=True)
    return DeletedObject(id=file_id, object="file", deleted=True)


def sweep_storage(ctx: ServiceContext) -> int:
    """Remove expired files and any blob without a row (after a crash mid-upload)."""
    with ctx.db.session() as session:
        expired = list(session.scalars(select(FileRow).where(FileRow.expires_at <= now())))
        for row in expired:
            session.delete(row)
        referenced = set(session.scalars(select(FileRow.blob_name)))
        stale = list(
            session.scalars(
                select(UploadRow).where(UploadRow.status == "pending", UploadRow.expires_at <= now())
            )
        )
        for upload in stale:
            upload.status = "expired"
        stale_ids = [upload.id for upload in stale]
        for part in session.scalars(select(UploadPartRow).where(UploadPartRow.upload_id.in_(stale_ids))):
            session.delete(part)
        session.flush()
        referenced_parts = set(session.scalars(select(UploadPartRow.blob_name)))
    return len(expired) + ctx.files.sweep(referenced) + ctx.upload_parts.sweep(referenced_parts)
