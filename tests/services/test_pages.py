"""Cursor pages (services/pages.py) on a real database: the `after` cursor is looked up within the
caller's scope, so another project's id is no cursor."""

from __future__ import annotations

from typing import Literal

import pytest

from openft.errors import NotFound
from openft.services import files as file_service
from openft.services.auth import ensure_project
from openft.services.context import Project, ServiceContext
from openft.services.pages import after_cursor
from openft.store.tables import FileRow


def store(ctx: ServiceContext, project: Project, name: str) -> str:
    blob = ctx.files.write_all([name.encode()])
    return file_service.register_file(
        ctx, project, filename=name, purpose="vision", blob=blob, expires_after_s=None
    ).id


def page_ids(
    ctx: ServiceContext, project: Project, after: str | None, order: Literal["asc", "desc"] = "asc"
) -> list[str]:
    page = file_service.list_files(ctx, project, purpose=None, limit=2, order=order, after=after)
    return [file.id for file in page.data]


def test_pages_continue_after_the_cursor_in_either_order(ctx: ServiceContext) -> None:
    project = ensure_project(ctx, "personal")
    first, second, third = (store(ctx, project, f"{n}.bin") for n in ("a", "b", "c"))

    assert page_ids(ctx, project, None) == [first, second]
    assert page_ids(ctx, project, second) == [third]
    assert page_ids(ctx, project, None, "desc") == [third, second]
    assert page_ids(ctx, project, second, "desc") == [first]
    with ctx.db.session() as session:
        assert after_cursor(session, FileRow, None, "File") is None
        seqs = [after_cursor(session, FileRow, file_id, "File") for file_id in (first, second, third)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3


def test_an_id_outside_the_scope_is_a_404_on_after(ctx: ServiceContext) -> None:
    mine, theirs = ensure_project(ctx, "personal"), ensure_project(ctx, "team-b")
    store(ctx, mine, "mine.bin")
    other = store(ctx, theirs, "theirs.bin")

    with pytest.raises(NotFound) as caught:
        page_ids(ctx, mine, other)
    assert caught.value.param == "after"
    assert caught.value.message == f"No such File object: {other}"
    with ctx.db.session() as session, pytest.raises(NotFound):
        after_cursor(session, FileRow, "file-nonexistent", "File")
