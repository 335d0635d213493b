"""The auth verbs (keys, projects, local mode) on a real database, below HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from openft import ids
from openft.errors import AuthenticationFailed, InvalidRequest, NotFound
from openft.services.auth import authenticate, create_key, ensure_project, list_keys, revoke_key
from openft.services.context import ServiceContext
from openft.store.tables import ApiKeyRow, ProjectRow


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


def test_concurrent_first_requests_share_one_local_project(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every request reaches the insert before any commits (the race a burst of first requests hits).
    arrived = threading.Barrier(8, timeout=5)
    new_project_id = ids.new_project_id

    def after_everyone_looked() -> str:
        with contextlib.suppress(threading.BrokenBarrierError):
            arrived.wait()
        return new_project_id()

    monkeypatch.setattr(ids, "new_project_id", after_everyone_looked)
    with ThreadPoolExecutor(max_workers=8) as pool:
        projects = list(pool.map(lambda _: authenticate(ctx, None), range(8)))

    assert {p.name for p in projects} == {"personal"}
    assert len({p.id for p in projects}) == 1
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ProjectRow)) == 1
