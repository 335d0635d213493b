"""The Models verbs: base models of the catalog, the project's fine-tuned models and checkpoints, and
those other projects shared with it (checkpoint permissions)."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select

from openft.errors import InvalidRequest
from openft.models.catalog import UnknownModelError
from openft.schemas.common import DeletedObject
from openft.schemas.jobs import Model, ModelList
from openft.services.base_models import catalog
from openft.services.checkpoint_permissions import (
    granted_models,
    model_not_found,
    owned_model,
    owner_name,
    usable_model,
)
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
        shared = [
            Model(id=r.name, created=r.created_at, owned_by=owner_name(session, r))
            for r in granted_models(session, project.id)
        ]
    return ModelList(data=base + tuned + shared)


def retrieve_model(ctx: ServiceContext, project: Project, name: str) -> Model:
    with ctx.db.session() as session:
        row = usable_model(session, project.id, name)
        if row is not None:
            return Model(id=row.name, created=row.created_at, owned_by=owner_name(session, row))
    if not name.startswith("ft:"):
        try:
            entry = catalog(ctx).get(name)
            return Model(id=entry.name, created=entry.created_at, owned_by=BASE_OWNER)
        except UnknownModelError:
            pass
    raise model_not_found(name)


def delete_model(ctx: ServiceContext, project: Project, name: str) -> DeletedObject:
    with ctx.db.session() as session:
        if not name.startswith("ft:") and _is_base(ctx, name):
            raise InvalidRequest(f"{name} is a base model and cannot be deleted.", param="model")
        row = owned_model(session, project, name, action="delete it", param="model")
        path = row.path
        session.delete(row)
        checkpoint = session.scalar(select(CheckpointRow).where(CheckpointRow.model_name == name))
        if checkpoint is not None:
            session.delete(checkpoint)
        still_used = session.scalar(select(FineTunedModelRow).where(FineTunedModelRow.path == path))
    if still_used is None:
        shutil.rmtree(Path(path), ignore_errors=True)
    return DeletedObject(id=name, object="model", deleted=True)


def _is_base(ctx: ServiceContext, name: str) -> bool:
    try:
        catalog(ctx).get(name)
    except UnknownModelError:
        return False
    return True
