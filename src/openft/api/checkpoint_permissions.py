"""HTTP for /v1/fine_tuning/checkpoints/{model}/permissions. Model names contain colons, hence `:path`."""

from __future__ import annotations

from fastapi import APIRouter

from openft.api.deps import Context, CurrentProject
from openft.api.openapi import one_of, page_limit
from openft.schemas.checkpoint_permissions import (
    CheckpointPermission,
    CreatePermissionsRequest,
    DeletedPermission,
)
from openft.schemas.common import CursorPage
from openft.services import checkpoint_permissions as permissions

router = APIRouter(prefix="/fine_tuning/checkpoints")
Page = CursorPage[CheckpointPermission]


@router.post(
    "/{fine_tuned_model_checkpoint:path}/permissions", response_model=CursorPage[CheckpointPermission]
)
def create_permissions(
    fine_tuned_model_checkpoint: str, body: CreatePermissionsRequest, ctx: Context, project: CurrentProject
) -> Page:
    return permissions.grant(ctx, project, fine_tuned_model_checkpoint, body.project_ids)


@router.get(
    "/{fine_tuned_model_checkpoint:path}/permissions", response_model=CursorPage[CheckpointPermission]
)
def list_permissions(
    fine_tuned_model_checkpoint: str,
    ctx: Context,
    project: CurrentProject,
    after: str | None = None,
    limit: int = page_limit(10, permissions.MAX_LIST_LIMIT),
    order: str = one_of("descending", permissions.ORDERS),
    project_id: str | None = None,
) -> Page:
    return permissions.list_permissions(
        ctx,
        project,
        fine_tuned_model_checkpoint,
        after=after,
        limit=limit,
        order=order,
        project_id=project_id,
    )


@router.delete(
    "/{fine_tuned_model_checkpoint:path}/permissions/{permission_id}", response_model=DeletedPermission
)
def delete_permission(
    fine_tuned_model_checkpoint: str, permission_id: str, ctx: Context, project: CurrentProject
) -> DeletedPermission:
    return permissions.revoke(ctx, project, fine_tuned_model_checkpoint, permission_id)
