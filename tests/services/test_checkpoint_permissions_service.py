"""Checkpoint permissions (services/checkpoint_permissions.py) on a real database: an owner shares a
fine-tuned model with other projects, lists and revokes those permissions, and `usable_model` (the one
check every use of an `ft:` name goes through) follows them."""

from __future__ import annotations

from pathlib import Path

import pytest

from openft.errors import InvalidRequest, NotFound, PermissionDenied
from openft.services.auth import ensure_project
from openft.services.checkpoint_permissions import (
    grant,
    granted_models,
    list_permissions,
    revoke,
    usable_model,
)
from openft.services.context import Project, ServiceContext
from tests.services.conftest import add_model

MODEL = "ft:openft-tiny:personal::abcd1234"


@pytest.fixture
def model(ctx: ServiceContext, project: Project, tmp_path: Path) -> str:
    return add_model(ctx, project, MODEL, tmp_path / "model")


def usable_by(ctx: ServiceContext, project: Project, name: str) -> bool:
    with ctx.db.session() as session:
        return usable_model(session, project.id, name) is not None


def listed(ctx: ServiceContext, project: Project, model: str, **options: object) -> list[str]:
    arguments: dict = {"after": None, "limit": 100, "order": "ascending", "project_id": None, **options}
    return [p.project_id for p in list_permissions(ctx, project, model, **arguments).data]


def test_a_model_is_usable_by_its_owner_and_by_the_projects_it_is_shared_with(
    ctx: ServiceContext, project: Project, other_project: Project, model: str
) -> None:
    third = ensure_project(ctx, "third")
    assert usable_by(ctx, project, model) and not usable_by(ctx, other_project, model)

    page = grant(ctx, project, model, [other_project.id])

    assert [p.project_id for p in page.data] == [other_project.id]
    assert page.data[0].id.startswith("cp_") and page.first_id == page.last_id == page.data[0].id
    assert usable_by(ctx, other_project, model) and not usable_by(ctx, third, model)
    with ctx.db.session() as session:
        assert [row.name for row in granted_models(session, other_project.id)] == [model]
        assert granted_models(session, project.id) == []  # its own model is not "shared with" it
    assert not usable_by(ctx, other_project, "ft:openft-tiny:personal::nosuch00")


def test_granting_by_name_and_granting_twice_give_the_one_permission(
    ctx: ServiceContext, project: Project, other_project: Project, model: str
) -> None:
    first = grant(ctx, project, model, [other_project.id]).data[0]

    again = grant(ctx, project, model, ["other", other_project.id])

    assert [p.id for p in again.data] == [first.id]
    assert listed(ctx, project, model) == [other_project.id]


@pytest.mark.parametrize(
    ("refs", "param", "words"),
    [
        (["nobody"], "project_ids[0]", "there is no project 'nobody'"),
        (["other", "personal"], "project_ids[1]", "is the project that owns the model"),
    ],
)
def test_a_grant_to_no_project_or_to_the_owner_is_refused_and_grants_nothing(
    ctx: ServiceContext,
    project: Project,
    other_project: Project,
    model: str,
    refs: list[str],
    param: str,
    words: str,
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        grant(ctx, project, model, refs)
    assert raised.value.param == param and words in raised.value.message
    assert listed(ctx, project, model) == []
    assert not usable_by(ctx, other_project, model)


def test_only_the_owner_manages_a_shared_model(
    ctx: ServiceContext, project: Project, other_project: Project, model: str
) -> None:
    permission = grant(ctx, project, model, [other_project.id]).data[0]
    third = ensure_project(ctx, "third")

    for attempt in (
        lambda: grant(ctx, other_project, model, [third.id]),
        lambda: list_permissions(
            ctx, other_project, model, after=None, limit=10, order="ascending", project_id=None
        ),
        lambda: revoke(ctx, other_project, model, permission.id),
    ):
        with pytest.raises(PermissionDenied) as raised:
            attempt()
        assert (raised.value.status_code, raised.value.code) == (403, "insufficient_permissions")
        assert raised.value.param == "fine_tuned_model_checkpoint"
        assert "belongs to project personal" in raised.value.message
    # A project it is not shared with is not told the model exists.
    with pytest.raises(NotFound) as not_found:
        grant(ctx, third, model, [other_project.id])
    assert (not_found.value.param, not_found.value.code) == ("fine_tuned_model_checkpoint", "model_not_found")
    assert usable_by(ctx, other_project, model) and not usable_by(ctx, third, model)


def test_permissions_are_listed_in_pages_in_either_order_and_by_project(
    ctx: ServiceContext, project: Project, other_project: Project, model: str
) -> None:
    third, fourth = ensure_project(ctx, "third"), ensure_project(ctx, "fourth")
    ids = [p.id for p in grant(ctx, project, model, [other_project.id, third.id, fourth.id]).data]
    order = [other_project.id, third.id, fourth.id]

    assert listed(ctx, project, model) == order
    assert listed(ctx, project, model, order="descending") == order[::-1]
    page = list_permissions(ctx, project, model, after=None, limit=2, order="ascending", project_id=None)
    assert ([p.id for p in page.data], page.has_more) == (ids[:2], True)
    assert listed(ctx, project, model, after=ids[1]) == [fourth.id]
    assert listed(ctx, project, model, after=ids[1], order="descending") == [other_project.id]
    assert listed(ctx, project, model, project_id=third.id) == [third.id]
    assert listed(ctx, project, model, project_id="fourth") == [fourth.id]  # a name works too
    assert listed(ctx, project, model, project_id="nobody") == []


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"order": "asc"}, "order"),
        ({"after": "cp_nothere"}, "after"),
    ],
)
def test_bad_list_options_are_refused(
    ctx: ServiceContext, project: Project, model: str, options: dict[str, object], param: str
) -> None:
    with pytest.raises((InvalidRequest, NotFound)) as raised:
        listed(ctx, project, model, **options)
    assert raised.value.param == param


def test_a_permission_of_another_model_is_no_cursor(
    ctx: ServiceContext, project: Project, other_project: Project, model: str, tmp_path: Path
) -> None:
    second = add_model(ctx, project, "ft:openft-tiny:personal::efgh5678", tmp_path / "second")
    elsewhere = grant(ctx, project, second, [other_project.id]).data[0].id
    with pytest.raises(NotFound) as raised:
        listed(ctx, project, model, after=elsewhere)
    assert raised.value.param == "after"


def test_a_revoked_permission_stops_the_next_use(
    ctx: ServiceContext, project: Project, other_project: Project, model: str, tmp_path: Path
) -> None:
    permission = grant(ctx, project, model, [other_project.id]).data[0]
    second = add_model(ctx, project, "ft:openft-tiny:personal::efgh5678", tmp_path / "second")

    with pytest.raises(NotFound) as wrong_model:  # the permission is of another model
        revoke(ctx, project, second, permission.id)
    assert wrong_model.value.param == "permission_id"
    assert usable_by(ctx, other_project, model)

    deleted = revoke(ctx, project, model, permission.id)

    assert (deleted.id, deleted.deleted) == (permission.id, True)
    assert not usable_by(ctx, other_project, model)
    assert listed(ctx, project, model) == []
    with pytest.raises(NotFound) as again:
        revoke(ctx, project, model, permission.id)
    assert again.value.param == "permission_id"
