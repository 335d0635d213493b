"""A job's log: its events and checkpoints, and the job lookup they share with the verbs in jobs.py."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from openft import ids
from openft.errors import no_such_object
from openft.schemas.common import CursorPage
from openft.schemas.jobs import JobCheckpoint, JobEvent, JobEventList
from openft.services.context import Project, ServiceContext, now
from openft.services.pages import newest_first
from openft.store.tables import CheckpointRow, JobEventRow, JobRow


def add_event(
    session: Any,
    job_id: str,
    message: str,
    *,
    level: str = "info",
    type_: str = "message",
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        JobEventRow(
            id=ids.new_event_id(),
            job_id=job_id,
            created_at=now(),
            level=level,
            message=message,
            type=type_,
            data_json=json.dumps(data) if data is not None else None,
        )
    )


def get_job_row(session: Any, project: Project, job_id: str) -> JobRow:
    row = session.scalar(select(JobRow).where(JobRow.id == job_id, JobRow.project_id == project.id))
    if row is None:
        raise no_such_object("FineTuningJob", job_id, "fine_tuning_job_id")
    assert isinstance(row, JobRow)
    return row


def list_events(
    ctx: ServiceContext, project: Project, job_id: str, *, after: str | None, limit: int
) -> JobEventList:
    with ctx.db.session() as session:
        get_job_row(session, project, job_id)
        of_job = JobEventRow.job_id == job_id
        rows, has_more = newest_first(
            session,
            select(JobEventRow).where(of_job),
            JobEventRow,
            of_job,
            after=after,
            limit=limit,
            kind="FineTuningJobEvent",
        )
    return JobEventList(data=[_to_event(r) for r in rows], has_more=has_more)


def events_since(
    ctx: ServiceContext, project: Project, job_id: str, after_seq: int
) -> tuple[list[tuple[int, JobEvent]], str]:
    """Events after a position, oldest first, with the job's status: the feed of the SSE stream."""
    with ctx.db.session() as session:
        status = get_job_row(session, project, job_id).status
        rows = list(
            session.scalars(
                select(JobEventRow)
                .where(JobEventRow.job_id == job_id, JobEventRow.seq > after_seq)
                .order_by(JobEventRow.seq)
            )
        )
    return [(r.seq, _to_event(r)) for r in rows], status


def event_seq(ctx: ServiceContext, event_id: str) -> int:
    with ctx.db.session() as session:
        return session.scalar(select(JobEventRow.seq).where(JobEventRow.id == event_id)) or 0


def _to_event(row: JobEventRow) -> JobEvent:
    return JobEvent(
        id=row.id,
        created_at=row.created_at,
        level=row.level,  # type: ignore[arg-type]
        message=row.message,
        type=row.type,  # type: ignore[arg-type]
        data=json.loads(row.data_json) if row.data_json is not None else None,
    )


def list_checkpoints(
    ctx: ServiceContext, project: Project, job_id: str, *, after: str | None, limit: int
) -> CursorPage[JobCheckpoint]:
    with ctx.db.session() as session:
        get_job_row(session, project, job_id)
        of_job = CheckpointRow.job_id == job_id
        rows, has_more = newest_first(
            session,
            select(CheckpointRow).where(of_job),
            CheckpointRow,
            of_job,
            after=after,
            limit=limit,
            kind="FineTuningJobCheckpoint",
        )
    data = [
        JobCheckpoint(
            id=r.id,
            created_at=r.created_at,
            fine_tuned_model_checkpoint=r.model_name,
            fine_tuning_job_id=r.job_id,
            step_number=r.step_number,
            metrics=json.loads(r.metrics_json),
        )
        for r in rows
    ]
    return CursorPage[JobCheckpoint](
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=has_more,
    )
