"""The Models verbs (services/models.py) on a real database: a project sees the base models, its own
fine-tuned models and those shared with it; only the owner deletes one, and deleting removes its files
unless another model still uses them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from openft.errors import InvalidRequest, NotFound, PermissionDenied
from openft.services.checkpoint_permissions import grant
from openft.services.context import Project, ServiceContext, now
from openft.services.models import delete_model, list_models, retrieve_model
from openft.store.tables import CheckpointPermissionRow, CheckpointRow, FineTunedModelRow
from tests.services.conftest import add_job, add_model

MINE = "ft:openft-tiny:personal::abcd1234"
THEIRS = "ft:openft-tiny:other::efgh5678"


def test_list_holds_base_models_then_own_then_shared_ones(
    ctx: ServiceContext, project: Project, other_project: Project, tmp_path: Path
) -> None:
    add_model(ctx, project, MINE, tmp_path / "mine")
    add_model(ctx, other_project, THEIRS, tmp_path / "theirs")
    add_model(ctx, other_project, "ft:openft-tiny:other::private1", tmp_path / "private")
    before = [(m.id, m.owned_by) for m in list_models(ctx, project).data]
    grant(ctx, other_project, THEIRS, [project.id])

    listed = [(m.id, m.owned_by) for m in list_models(ctx, project).data]

    assert ("openft-tiny", "openft") in listed
    assert all(owner == "openft" for _, owner in listed[:-2])
    assert listed[-2:] == [(MINE, "personal"), (THEIRS, "other")]
    assert before == listed[:-1]
    assert "ft:openft-tiny:other::private1" not in dict(listed)


def test_retrieve_answers_own_shared_and_base_models(
    ctx: ServiceContext, project: Project, other_project: Project, tmp_path: Path
) -> None:
    add_model(ctx, project, MINE, tmp_path / "mine")
    add_model(ctx, other_project, THEIRS, tmp_path / "theirs")
    grant(ctx, other_project, THEIRS, [project.id])

    mine = retrieve_model(ctx, project, MINE)
    assert (mine.id, mine.owned_by, mine.object) == (MINE, "personal", "model")
    assert abs(mine.created - now()) <= 5
    assert (retrieve_model(ctx, project, THEIRS).owned_by) == "other"
    base = retrieve_model(ctx, project, "openft-tiny")
    assert (base.id, base.owned_by) == ("openft-tiny", "openft")


@pytest.mark.parametrize(
    "name", ["gpt-4o", "ft:openft-tiny:other::efgh5678", "ft:openft-tiny:personal::nothere1"]
)
def test_retrieve_hides_what_the_project_cannot_use(
    ctx: ServiceContext, project: Project, other_project: Project, tmp_path: Path, name: str
) -> None:
    add_model(ctx, other_project, THEIRS, tmp_path / "theirs")  # not shared
    with pytest.raises(NotFound) as raised:
        retrieve_model(ctx, project, name)
    assert (raised.value.param, raised.value.code) == ("model", "model_not_found")
    assert raised.value.message == f"The model `{name}` does not exist or you do not have access to it."


def test_delete_removes_the_model_its_files_and_its_permissions(
    ctx: ServiceContext, project: Project, other_project: Project, tmp_path: Path
) -> None:
    add_model(ctx, project, MINE, tmp_path / "mine")
    (tmp_path / "mine" / "model.safetensors").write_bytes(b"weights")
    grant(ctx, project, MINE, [other_project.id])

    deleted = delete_model(ctx, project, MINE)

    assert (deleted.id, deleted.object, deleted.deleted) == (MINE, "model", True)
    assert not (tmp_path / "mine").exists()
    for who in (project, other_project):
        with pytest.raises(NotFound):
            retrieve_model(ctx, who, MINE)
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(CheckpointPermissionRow)) == 0
    with pytest.raises(NotFound) as again:
        delete_model(ctx, project, MINE)
    assert again.value.param == "model"


def test_deleting_a_checkpoint_model_removes_its_checkpoint_and_keeps_shared_files(
    ctx: ServiceContext, project: Project, tmp_path: Path
) -> None:
    job_id = add_job(ctx, project, "succeeded")
    checkpoint = f"{MINE}:ckpt-step-10"
    add_model(ctx, project, checkpoint, tmp_path / "step-10", job_id=job_id)
    with ctx.db.session() as session:
        session.add(
            CheckpointRow(
                id="ftckpt_10",
                job_id=job_id,
                created_at=now(),
                step_number=10,
                model_name=checkpoint,
                path=str(tmp_path / "step-10"),
                metrics_json="{}",
            )
        )
        # A second name for the same directory (the final model is the last checkpoint's files).
        session.add(
            FineTunedModelRow(
                name=MINE,
                project_id=project.id,
                job_id=job_id,
                base_model="openft-tiny",
                path=str(tmp_path / "step-10"),
                created_at=now(),
            )
        )

    delete_model(ctx, project, checkpoint)

    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(CheckpointRow)) == 0
    assert (tmp_path / "step-10").is_dir()  # still the files of MINE
    assert retrieve_model(ctx, project, MINE).id == MINE

    delete_model(ctx, project, MINE)
    assert not (tmp_path / "step-10").exists()


def test_a_base_model_cannot_be_deleted(ctx: ServiceContext, project: Project) -> None:
    with pytest.raises(InvalidRequest) as raised:
        delete_model(ctx, project, "openft-tiny")
    assert raised.value.param == "model" and "is a base model" in raised.value.message


def test_a_shared_model_can_be_deleted_only_by_its_owner(
    ctx: ServiceContext, project: Project, other_project: Project, tmp_path: Path
) -> None:
    add_model(ctx, other_project, THEIRS, tmp_path / "theirs")
    grant(ctx, other_project, THEIRS, [project.id])

    with pytest.raises(PermissionDenied) as raised:
        delete_model(ctx, project, THEIRS)

    assert (raised.value.param, raised.value.code) == ("model", "insufficient_permissions")
    assert (tmp_path / "theirs").is_dir()
    assert retrieve_model(ctx, project, THEIRS).id == THEIRS
