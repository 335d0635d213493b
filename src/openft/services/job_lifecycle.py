"""The job lifecycle: every move of a fine-tuning job from one status to another (docs/architecture.md).

Each move is one conditional UPDATE (`... WHERE id = :id AND status IN (allowed)`), so two moves that
race (a user's cancel and the worker's succeed) cannot overwrite each other: the one that comes second
finds the row in a status it may not move from and raises IllegalMove, changing nothing. Every status
write in services goes through `move`; the API, the worker and recovery read the status sets in
`openft.schemas.jobs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from openft.errors import InvalidRequest
from openft.schemas.jobs import ACTIVE_STATUSES, JobStatus
from openft.store.tables import JobRow

MoveName = Literal["validate", "start", "succeed", "fail", "cancel", "pause", "resume", "requeue"]

# A new job starts here: the worker checks its files before it may queue.
INITIAL_STATUS: JobStatus = "validating_files"


@dataclass(frozen=True)
class Move:
    allowed_from: frozenset[JobStatus]
    to: JobStatus
    refusal: str  # ends "Job <id> has status '<status>'" when the job is in no status it may move from


MOVES: dict[MoveName, Move] = {
    "validate": Move(
        frozenset({"validating_files"}), "queued", "; only a job whose files are being validated can queue."
    ),
    "start": Move(frozenset({"queued"}), "running", "; only a queued job can start."),
    "succeed": Move(frozenset({"running"}), "succeeded", "; only a running job can succeed."),
    # A paused job can fail too: its recipe may crash while it stops.
    "fail": Move(ACTIVE_STATUSES, "failed", " and can no longer fail."),
    "cancel": Move(ACTIVE_STATUSES, "cancelled", " and can no longer be cancelled."),
    "pause": Move(
        frozenset({"queued", "running"}), "paused", "; only a queued or running job can be paused."
    ),
    "resume": Move(frozenset({"paused"}), "queued", "; only a paused job can be resumed."),
    # Recovery: the worker running it stopped responding; another one resumes it from its checkpoint.
    "requeue": Move(frozenset({"running"}), "queued", "; only a running job can be requeued."),
}


class IllegalMove(InvalidRequest):
    """The job's status does not allow the move (the API answers it as a 400 on the job id)."""

    def __init__(self, job_id: str, status: str, move_name: MoveName) -> None:
        super().__init__(
            f"Job {job_id} has status '{status}'{MOVES[move_name].refusal}", param="fine_tuning_job_id"
        )
        self.status = status
        self.move = move_name


def job_row(session: Session, job_id: str) -> JobRow:
    """The job by id, for the worker's verbs (the API's lookup, scoped to a project, is get_job_row)."""
    job = session.scalar(select(JobRow).where(JobRow.id == job_id))
    assert isinstance(job, JobRow), job_id
    return job


def status_of(job: JobRow) -> JobStatus:
    """The row's status as the type it is (the column is plain text; only `move` writes it)."""
    return cast(JobStatus, job.status)


def move(session: Session, job: JobRow, name: MoveName, **values: Any) -> None:
    """Move `job` as `name` says, setting `values` in the same UPDATE; IllegalMove when the job's status
    in the database (not the one read earlier) does not allow it. `job` is reloaded either way."""
    rule = MOVES[name]
    result = session.execute(
        update(JobRow)
        .where(JobRow.id == job.id, JobRow.status.in_(rule.allowed_from))
        .values(status=rule.to, **values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(job)
    if getattr(result, "rowcount", 0) != 1:
        raise IllegalMove(job.id, job.status, name)
