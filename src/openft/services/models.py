"""The Models verbs: base models of the catalog plus the project's fine-tuned models and checkpoints."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select

from openft.errors import InvalidRequest, NotFound
from openft.models.catalog import UnknownModelError
from openft.schemas.common import DeletedObject
from openft.schemas.jobs import Model, ModelList
from openft.services.base_models import catalog
from openft.services.context import Project, ServiceContext
from openft.store.tables import CheckpointRow, FineTunedModelRow

BASE_OWNER = "openft"


def list_models(ctx: ServiceContext, project: Project) -> ModelList:
    # A packaged model that is not installed here cannot be used, so it is not offered.
    base = [
        Model(id=e.name, created=e.created_at, owned_by=BASE_OWNER)
        for e in catalog(ctx).list()
        if e.unavailable_reason is None
    ]
    with ctx.db.session() as session:
        rows = session.scalars(
            select(FineTunedModelRow)
            .where(FineTunedModelRow.project_id == project.id)
            .order_by(FineTunedModelRow.created_at, FineTunedModelRow.name)
        )
        tuned = [Model(id=r.name, created=r.created_at, owned_by=project.name) for r in rows]
    return ModelList(data=base + tuned)


def retrieve_model(ctx: ServiceContext, project: Project, name: str) -> Model:
    with ctx.db.session() as session:
        row = _tuned(session, project, name)
        if row is not None:
            return Model(id=row.name, created=row.created_at, owned_by=project.name)
    if not name.startswith("ft:"):
        try:
            entry = catalog(ctx).get(name)
            return Model(id=entry.name, created=entry.created_at, owned_by=BASE_OWNER)
        except UnknownModelError:
            pass
    raise _model_not_found(name)


def delete_model(ctx: ServiceContext, project: Project, name: str) -> DeletedObject:
    with ctx.db.session() as session:
        row = _tuned(session, project, name)
        if row is None:
            if not name.startswith("ft:") and _is_base(ctx, name):
                raise InvalidRequest(f"{name} is a base model and cannot be deleted.", param="model")
            raise _model_not_found(name)
        path = row.path
        session.delete(row)
        checkpoint = session.scalar(select(CheckpointRow).where(CheckpointRow.model_name == name))
        if checkpoint is not None:
            session.delete(checkpoint)
        still_used = session.scalar(select(FineTunedModelRow).where(FineTunedModelRow.path == path))
    if still_used is None:
        shutil.rmtree(Path(path), ignore_errors=True)
    return DeletedObject(id=name, object="model", deleted=True)


def _tuned(session: object, project: Project, name: str) -> FineTunedModelRow | None:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    return session.scalar(
        select(FineTunedModelRow).where(
            FineTunedModelRow.name == name, FineTunedModelRow.project_id == project.id
        )
    )


def _is_base(ctx: ServiceContext, name: str) -> bool:
    try:
        catalog(ctx).get(name)
    except UnknownModelError:
        return False
    return True


def _model_not_found(name: str) -> NotFound:
    return NotFound(
        f"The model `{name}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )
