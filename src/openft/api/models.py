"""HTTP for /v1/models. Model names contain colons (`ft:base:proj:suffix:id`), hence `:path`."""

from __future__ import annotations

from fastapi import APIRouter

from openft.api.deps import Context, CurrentProject
from openft.schemas.common import DeletedObject
from openft.schemas.jobs import Model, ModelList
from openft.services import models as model_service

router = APIRouter(prefix="/models")


@router.get("", response_model=ModelList)
def list_models(ctx: Context, project: CurrentProject) -> ModelList:
    return model_service.list_models(ctx, project)


@router.get("/{model:path}", response_model=Model)
def retrieve_model(model: str, ctx: Context, project: CurrentProject) -> Model:
    return model_service.retrieve_model(ctx, project, model)


@router.delete("/{model:path}", response_model=DeletedObject)
def delete_model(model: str, ctx: Context, project: CurrentProject) -> DeletedObject:
    return model_service.delete_model(ctx, project, model)
