"""The Files verbs on a real database, below HTTP."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from openft.errors import NotFound
from openft.services import files as file_service
from openft.services.auth import ensure_project
from openft.services.context import Project, ServiceContext
from openft.store.tables import FileRow


def store_file(ctx: ServiceContext, project: Project, data: bytes, purpose: str = "vision", **kwargs):
    blob = ctx.files.write_all([data])
    return file_service.register_file(
        ctx,
        project,
        filename="f.bin",
        purpose=purpose,
        blob=blob,
        expires_after_s=kwargs.get("expires_after_s"),
    )


def test_a_failed_row_insert_deletes_the_blob(ctx: ServiceContext) -> None:
    """No row without a blob and no blob without a row: here the project does not exist."""
    blob = ctx.files.write_all([b"orphan to be"])
    ghost = Project(id="proj_doesnotexist", name="ghost")

    with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
        file_service.register_file(
            ctx, ghost, filename="a.bin", purpose="vision", blob=blob, expires_after_s=None
        )

    assert list(ctx.settings.files_dir.iterdir()) == []


def test_expired_files_are_hidden_then_swept_with_their_blobs(ctx: ServiceContext) -> None:
    project = ensure_project(ctx, "personal")
    live = store_file(ctx, project, b"live")
    expiring = store_file(ctx, project, b"expiring", expires_after_s=3600)
    with ctx.db.session() as session:
        session.execute(
            update(FileRow).where(FileRow.id == expiring.id).values(expires_at=int(time.time()) - 1)
        )
        blob_name = session.scalar(select(FileRow.blob_name).where(FileRow.id == expiring.id))
    two_hours_ago = time.time() - 7200
    os.utime(ctx.files.path(blob_name), (two_hours_ago, two_hours_ago))

    listed = file_service.list_files(ctx, project, purpose=None, limit=10, order="desc", after=None)
    assert [f.id for f in listed.data] == [live.id]
    with pytest.raises(NotFound):
        file_service.retrieve_file(ctx, project, expiring.id)

    assert file_service.sweep_storage(ctx) == 2  # the row, then its now unreferenced blob
    assert not ctx.files.path(blob_name).exists()
    assert file_service.retrieve_file(ctx, project, live.id) == live


def test_delete_removes_row_and_blob(ctx: ServiceContext) -> None:
    project = ensure_project(ctx, "personal")
    created = store_file(ctx, project, b"bye")

    assert file_service.delete_file(ctx, project, created.id).deleted is True

    assert list(ctx.settings.files_dir.iterdir()) == []
    with pytest.raises(NotFound):
        file_service.delete_file(ctx, project, created.id)
