"""The Files and auth verbs on a real database, below HTTP."""

from __future__ import annotations

import dataclasses
import os
import time

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from openft.errors import AuthenticationFailed, InvalidRequest, NotFound
from openft.services import files as file_service
from openft.services.auth import authenticate, create_key, ensure_project, list_keys, revoke_key
from openft.services.context import Project, ServiceContext
from openft.store.tables import ApiKeyRow, FileRow


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


def test_keys_are_stored_only_as_hashes(ctx: ServiceContext) -> None:
    key, info = create_key(ctx, "team-a")

    with ctx.db.session() as session:
        row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.id == info.id))
        assert row is not None
        stored = [str(getattr(row, column.key)) for column in ApiKeyRow.__table__.columns]
    assert all(key not in value for value in stored)
    assert info.redacted == key[:10] + "..." + key[-4:]
    assert authenticate(ctx, key) == ensure_project(ctx, "team-a")
    assert [k.id for k in list_keys(ctx)] == [info.id]


def test_local_mode_ends_with_the_first_key_and_returns_only_when_asked_for(ctx: ServiceContext) -> None:
    assert authenticate(ctx, None).name == "personal"
    key, info = create_key(ctx, "team-a")

    for token in (None, "", "sk-openft-wrong"):
        with pytest.raises(AuthenticationFailed):
            authenticate(ctx, token)

    assert revoke_key(ctx, info.id) == 0  # active keys left
    for token in (None, "sk-openft-wrong", key):  # revoking every key does not reopen the server
        with pytest.raises(AuthenticationFailed):
            authenticate(ctx, token)
    with pytest.raises(NotFound):
        revoke_key(ctx, info.id)

    local = dataclasses.replace(ctx, settings=ctx.settings.model_copy(update={"local_mode": True}))
    assert authenticate(local, None).name == "personal"
    with pytest.raises(AuthenticationFailed):  # a revoked key is never a local-mode token
        authenticate(local, key)


@pytest.mark.parametrize("name", ["", "Upper", "has space", "x" * 65, "-leading-dash"])
def test_invalid_project_names_are_refused(ctx: ServiceContext, name: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        create_key(ctx, name)

    assert caught.value.param == "project"
    assert list_keys(ctx) == []
