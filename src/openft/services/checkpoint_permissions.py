"""Checkpoint permissions: a project lets other projects use one of its fine-tuned models.

A granted project may chat with the model, fine-tune from it and retrieve it; only the owner may delete
the model or manage who may use it. `usable_model` is the one check every use of an `ft:` name goes
through (chat, job creation and the worker's start, /v1/models), so a revoked permission stops the next
request.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from openft import ids
from openft.errors import InvalidRequest, NotFound, PermissionDenied, no_such_object
from openft.schemas.checkpoint_permissions import CheckpointPermission, DeletedPermission
from openft.schemas.common import CursorPage
from openft.services.context import Project, ServiceContext, now
from openft.services.pages import after_cursor, seq_page
from openft.store.tables import CheckpointPermissionRow, FineTunedModelRow, ProjectRow

MAX_LIST_LIMIT = 100
ORDERS = ("ascending", "descending")
MODEL_PARAM = "fine_tuned_model_checkpoint"


def usable_model(session: Session, project_id: str, name: str) -> FineTunedModelRow | None:
    """The fine-tuned model `name` if the project owns it or holds a permission for it, else None."""
    granted = select(CheckpointPermissionRow.model_name).where(
        CheckpointPermissionRow.model_name == name, CheckpointPermissionRow.project_id == project_id
    )
    return session.scalar(
        select(FineTunedModelRow).where(
            FineTunedModelRow.name == name,
            or_(FineTunedModelRow.project_id == project_id, FineTunedModelRow.name.in_(granted)),
        )
    )


def granted_models(session: Session, project_id: str) -> list[FineTunedModelRow]:
    """The other projects' models this project may use, oldest first."""
    return list(
        session.scalars(
            select(FineTunedModelRow)
            .join(CheckpointPermissionRow, CheckpointPermissionRow.model_name == FineTunedModelRow.name)
            .where(CheckpointPermissionRow.project_id == project_id)
            .order_by(FineTunedModelRow.created_at, FineTunedModelRow.name)
        )
    )


def owner_name(session: Session, row: FineTunedModelRow) -> str:
    owner = session.get(ProjectRow, row.project_id)
    return owner.name if owner is not None else row.project_id


def owned_model(
    session: Session, project: Project, name: str, *, action: str, param: str = MODEL_PARAM
) -> FineTunedModelRow:
    """The model if this project owns it; a 403 if another project only shared it, else a 404."""
    row = usable_model(session, project.id, name)
    if row is None:
        raise model_not_found(name, param=param)
    if row.project_id != project.id:
        raise PermissionDenied(
            f"The model `{name}` belongs to project {owner_name(session, row)}, which shared it with this "
            f"project: only its owner can {action}.",
            param=param,
            code="insufficient_permissions",
        )
    return row


def grant(
    ctx: ServiceContext, project: Project, model: str, project_ids: list[str]
) -> CursorPage[CheckpointPermission]:
    """Permissions for each project (granting twice returns the permission that already exists)."""
    with ctx.db.session() as session:
        owned_model(session, project, model, action="share it")
        grantees = [_grantee(session, project, ref, index) for index, ref in enumerate(project_ids)]
        rows = []
        for grantee in dict.fromkeys(grantees):
            row = session.scalar(
                select(CheckpointPermissionRow).where(
                    CheckpointPermissionRow.model_name == model, CheckpointPermissionRow.project_id == grantee
                )
            )
            if row is None:
                row = CheckpointPermissionRow(
                    id=ids.new_checkpoint_permission_id(),
                    model_name=model,
                    project_id=grantee,
                    created_at=now(),
                )
                session.add(row)
            rows.append(row)
        session.flush()
        return _page([_to_object(r) for r in rows], has_more=False)


def list_permissions(
    ctx: ServiceContext,
    project: Project,
    model: str,
    *,
    after: str | None,
    limit: int,
    order: str,
    project_id: str | None,
) -> CursorPage[CheckpointPermission]:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}.", param="limit")
    if order not in ORDERS:
        raise InvalidRequest("order must be 'ascending' or 'descending'.", param="order")
    with ctx.db.session() as session:
        owned_model(session, project, model, action="see who it is shared with")
        query = select(CheckpointPermissionRow).where(CheckpointPermissionRow.model_name == model)
        if project_id:
            found = _project_id(session, project_id)
            query = query.where(CheckpointPermissionRow.project_id == (found or project_id))
        cursor = after_cursor(
            session,
            CheckpointPermissionRow,
            after,
            "checkpoint.permission",
            CheckpointPermissionRow.model_name == model,
        )
        direction: Literal["asc", "desc"] = "asc" if order == "ascending" else "desc"
        rows, has_more = seq_page(
            session, query, CheckpointPermissionRow, after_seq=cursor, order=direction, limit=limit
        )
        return _page([_to_object(r) for r in rows], has_more=has_more)


def revoke(ctx: ServiceContext, project: Project, model: str, permission_id: str) -> DeletedPermission:
    with ctx.db.session() as session:
        owned_model(session, project, model, action="revoke its permissions")
        result = session.execute(
            delete(CheckpointPermissionRow).where(
                CheckpointPermissionRow.id == permission_id, CheckpointPermissionRow.model_name == model
            )
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise no_such_object("checkpoint.permission", permission_id, "permission_id")
    return DeletedPermission(id=permission_id, deleted=True)


def model_not_found(name: str, *, param: str = "model") -> NotFound:
    return NotFound(
        f"The model `{name}` does not exist or you do not have access to it.",
        param=param,
        code="model_not_found",
    )


def _grantee(session: Session, owner: Project, ref: str, index: int) -> str:
    """A project's id from its id (`proj_...`) or, as an openft convenience, its name."""
    found = _project_id(session, ref)
    if found is None:
        raise InvalidRequest(
            f"project_ids[{index}]: there is no project {ref!r} on this server. Use a project's id "
            "(proj_...) or its name (the project of `openft keys create --project NAME`).",
            param=f"project_ids[{index}]",
        )
    if found == owner.id:
        raise InvalidRequest(
            f"project_ids[{index}]: {ref!r} is the project that owns the model; it needs no permission.",
            param=f"project_ids[{index}]",
        )
    return found


def _project_id(session: Session, ref: str) -> str | None:
    by_id = session.scalar(select(ProjectRow.id).where(ProjectRow.id == ref))
    return by_id or session.scalar(select(ProjectRow.id).where(ProjectRow.name == ref))


def _to_object(row: CheckpointPermissionRow) -> CheckpointPermission:
    return CheckpointPermission(id=row.id, created_at=row.created_at, project_id=row.project_id)


def _page(data: list[CheckpointPermission], *, has_more: bool) -> CursorPage[CheckpointPermission]:
    return CursorPage(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=has_more,
    )
