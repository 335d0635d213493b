"""Reading eval runs and their output items, and the verbs that stop a run: cancel and delete."""

from __future__ import annotations

import json
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from openft.errors import InvalidRequest, no_such_object
from openft.schemas.evals import (
    EVAL_RUN_STATUSES,
    OUTPUT_ITEM_STATUSES,
    DeletedEvalRun,
    EvalRun,
    EvalRunList,
    OutputItem,
    OutputItemList,
)
from openft.services.context import Project, ServiceContext
from openft.services.eval_runs import ACTIVE_STATUSES, to_run
from openft.services.evals import check_limit, delete_run_rows, get_eval_row
from openft.services.pages import after_cursor, seq_page
from openft.store.tables import EvalOutputItemRow, EvalRunRow

Order = Literal["asc", "desc"]


def get_run_row(session: Session, project: Project, eval_id: str, run_id: str) -> EvalRunRow:
    get_eval_row(session, project, eval_id)
    row = session.scalar(select(EvalRunRow).where(EvalRunRow.id == run_id, EvalRunRow.eval_id == eval_id))
    if row is None:
        raise no_such_object("EvalRun", run_id, "run_id")
    return row


def retrieve_run(ctx: ServiceContext, project: Project, eval_id: str, run_id: str) -> EvalRun:
    with ctx.db.session() as session:
        return to_run(get_run_row(session, project, eval_id, run_id))


def list_runs(
    ctx: ServiceContext,
    project: Project,
    eval_id: str,
    *,
    after: str | None,
    limit: int,
    order: Order,
    status: str | None,
) -> EvalRunList:
    check_limit(limit)
    if status is not None and status not in EVAL_RUN_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(EVAL_RUN_STATUSES)}.", param="status")
    query = select(EvalRunRow).where(EvalRunRow.eval_id == eval_id)
    if status is not None:
        query = query.where(EvalRunRow.status == status)
    with ctx.db.session() as session:
        get_eval_row(session, project, eval_id)
        cursor = after_cursor(session, EvalRunRow, after, "EvalRun", EvalRunRow.eval_id == eval_id)
        rows, has_more = seq_page(session, query, EvalRunRow, after_seq=cursor, order=order, limit=limit)
        data = [to_run(r) for r in rows]
    return EvalRunList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=has_more,
    )


def cancel_run(ctx: ServiceContext, project: Project, eval_id: str, run_id: str) -> EvalRun:
    """Queued or in progress -> canceled; the items already graded stay, the rest are not run."""
    with ctx.db.session() as session:
        row = get_run_row(session, project, eval_id, run_id)
        if row.status not in ACTIVE_STATUSES:
            raise InvalidRequest(
                f"Run {run_id} has status '{row.status}' and can no longer be canceled.", param="run_id"
            )
        # Conditional: a run the executor finished since the read above keeps its final status.
        session.execute(
            update(EvalRunRow)
            .where(EvalRunRow.id == run_id, EvalRunRow.status.in_(ACTIVE_STATUSES))
            .values(status="canceled")
        )
        session.refresh(row)
        if row.status != "canceled":
            raise InvalidRequest(
                f"Run {run_id} has status '{row.status}' and can no longer be canceled.", param="run_id"
            )
        return to_run(row)


def delete_run(ctx: ServiceContext, project: Project, eval_id: str, run_id: str) -> DeletedEvalRun:
    with ctx.db.session() as session:
        delete_run_rows(session, get_run_row(session, project, eval_id, run_id))
    return DeletedEvalRun(run_id=run_id, deleted=True)


def to_output_item(row: EvalOutputItemRow) -> OutputItem:
    return OutputItem(
        id=row.id,
        eval_id=row.eval_id,
        run_id=row.run_id,
        created_at=row.created_at,
        status=row.status,
        datasource_item_id=row.datasource_item_id,
        datasource_item=json.loads(row.datasource_item_json),
        results=json.loads(row.results_json),
        sample=json.loads(row.sample_json) if row.sample_json else None,
    )


def list_output_items(
    ctx: ServiceContext,
    project: Project,
    eval_id: str,
    run_id: str,
    *,
    after: str | None,
    limit: int,
    order: Order,
    status: str | None,
) -> OutputItemList:
    check_limit(limit)
    if status is not None and status not in OUTPUT_ITEM_STATUSES:
        raise InvalidRequest("status must be 'pass' or 'fail'.", param="status")
    query = select(EvalOutputItemRow).where(EvalOutputItemRow.run_id == run_id)
    if status is not None:
        query = query.where(EvalOutputItemRow.status == status)
    with ctx.db.session() as session:
        get_run_row(session, project, eval_id, run_id)
        cursor = after_cursor(
            session, EvalOutputItemRow, after, "EvalRunOutputItem", EvalOutputItemRow.run_id == run_id
        )
        rows, has_more = seq_page(
            session, query, EvalOutputItemRow, after_seq=cursor, order=order, limit=limit
        )
        data = [to_output_item(r) for r in rows]
    return OutputItemList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=has_more,
    )


def retrieve_output_item(
    ctx: ServiceContext, project: Project, eval_id: str, run_id: str, item_id: str
) -> OutputItem:
    with ctx.db.session() as session:
        get_run_row(session, project, eval_id, run_id)
        row = session.scalar(
            select(EvalOutputItemRow).where(
                EvalOutputItemRow.id == item_id, EvalOutputItemRow.run_id == run_id
            )
        )
        if row is None:
            raise no_such_object("EvalRunOutputItem", item_id, "output_item_id")
        return to_output_item(row)
