"""The Jobs verbs the worker calls: claim, validate files, start, relay reports, finish, recover.

Status changes happen here and in services.jobs only. A job is held by one worker at a time through
`worker_id`, claimed with a single conditional UPDATE (atomic on SQLite; FOR UPDATE SKIP LOCKED on
PostgreSQL so many workers share one queue).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from openft.services.context import ServiceContext, now
from openft.services.jobs import add_event
from openft.store.tables import FileRow, JobRow

MIN_EXAMPLES = 10


@dataclass(frozen=True)
class JobFailure(Exception):
    code: str
    message: str
    param: str | None


def claim_job(ctx: ServiceContext, worker_name: str, status: str) -> str | None:
    """Take the oldest unheld job in `status`; returns its id, or None when there is none."""
    token = f"{worker_name}:{secrets.token_hex(6)}"
    oldest_free = (
        select(JobRow.id)
        .where(JobRow.status == status, JobRow.worker_id.is_(None))
        .order_by(JobRow.seq)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    with ctx.db.session() as session:
        session.execute(
            update(JobRow)
            .where(JobRow.id == oldest_free, JobRow.worker_id.is_(None))
            .values(worker_id=token, heartbeat_at=time.time())
        )
        return session.scalar(select(JobRow.id).where(JobRow.worker_id == token))


def release_job(ctx: ServiceContext, job_id: str) -> None:
    with ctx.db.session() as session:
        session.execute(update(JobRow).where(JobRow.id == job_id).values(worker_id=None, heartbeat_at=None))


def validate_job_files(ctx: ServiceContext, job_id: str) -> None:
    """validating_files -> queued with concrete hyperparameters, or -> failed naming line and field."""
    with ctx.db.session() as session:
        job = session.scalar(select(JobRow).where(JobRow.id == job_id))
        assert job is not None
        if job.status != "validating_files":
            job.worker_id = None
            return
        try:
            n_train = _check_file(session, job.training_file, "training_file")
            if job.validation_file:
                _check_file(session, job.validation_file, "validation_file")
        except JobFailure as failure:
            _fail(session, job, failure)
            return
        job.hyperparameters_json = json.dumps(_resolve_hyperparameters(ctx, job, n_train))
        job.status, job.worker_id = "queued", None
        add_event(session, job.id, "Files validated, moving job to queued state", data={})


def _check_file(session: Any, file_id: str, param: str) -> int:
    which = "training" if param == "training_file" else "validation"
    code = f"invalid_{param}"
    row = session.scalar(select(FileRow).where(FileRow.id == file_id))
    if row is None:
        raise JobFailure(
            code, f"The job failed due to an invalid {which} file. File {file_id} was deleted.", param
        )
    if row.status == "error":
        raise JobFailure(
            code,
            f"The job failed due to an invalid {which} file. Invalid file format. {row.status_details}",
            param,
        )
    if row.data_format not in (None, "chat"):
        raise JobFailure(
            code,
            f"The job failed due to an invalid {which} file. Invalid file format. Input file {file_id} is in "
            f"the {row.data_format} format, but the specified fine-tuning job is using method=supervised, "
            "which needs chat messages.",
            param,
        )
    n_examples = row.n_examples or 0
    if param == "training_file" and n_examples < MIN_EXAMPLES:
        raise JobFailure(
            "invalid_n_examples",
            f"Training file has {n_examples} example(s), but must have at least {MIN_EXAMPLES} examples",
            param,
        )
    return n_examples


def _resolve_hyperparameters(ctx: ServiceContext, job: JobRow, n_train: int) -> dict[str, Any]:
    from openft.services.base_models import resolve_base_model
    from openft.train.config import auto_n_epochs

    requested = json.loads(job.hyperparameters_json)
    defaults = resolve_base_model(ctx, job.project_id, job.model).defaults
    resolved = dict(requested)
    if requested.get("n_epochs") in (None, "auto"):
        resolved["n_epochs"] = auto_n_epochs(n_train)
    if requested.get("batch_size") in (None, "auto"):
        resolved["batch_size"] = min(defaults.batch_size, n_train)
    if requested.get("learning_rate_multiplier") in (None, "auto"):
        resolved["learning_rate_multiplier"] = 1.0
    return resolved


def _fail(session: Any, job: JobRow, failure: JobFailure) -> None:
    job.status, job.worker_id, job.finished_at = "failed", None, now()
    job.error_code, job.error_message, job.error_param = failure.code, failure.message, failure.param
    add_event(session, job.id, failure.message, level="error", data={})


def fail_job(ctx: ServiceContext, job_id: str, failure: JobFailure) -> None:
    with ctx.db.session() as session:
        job = session.scalar(select(JobRow).where(JobRow.id == job_id))
        assert job is not None
        if job.status not in ("cancelled", "failed", "succeeded"):
            _fail(session, job, failure)


def heartbeat(ctx: ServiceContext, job_id: str, estimated_finish: int | None = None) -> str:
    """Record that the worker is alive; returns the job's status (a cancel or pause shows up here)."""
    with ctx.db.session() as session:
        job = session.scalar(select(JobRow).where(JobRow.id == job_id))
        assert job is not None
        job.heartbeat_at = time.time()
        if estimated_finish is not None and job.status == "running":
            job.estimated_finish = estimated_finish
        return job.status


def recover_stale_jobs(ctx: ServiceContext, *, stale_after_s: float, max_attempts: int) -> list[str]:
    """Jobs whose worker stopped sending heartbeats go back to the queue (and resume), or fail."""
    cutoff = time.time() - stale_after_s
    recovered = []
    with ctx.db.session() as session:
        stale = session.scalars(
            select(JobRow).where(
                JobRow.worker_id.is_not(None),
                JobRow.heartbeat_at < cutoff,
                JobRow.status.in_(("validating_files", "queued", "running")),
            )
        )
        for job in stale:
            job.worker_id, job.heartbeat_at = None, None
            recovered.append(job.id)
            if job.status != "running":
                continue
            if job.n_attempts >= max_attempts:
                _fail(
                    session,
                    job,
                    JobFailure(
                        "worker_lost",
                        f"The worker running this job stopped responding {job.n_attempts} times; giving up. "
                        "Check the worker's logs (out of memory?) and create a new job.",
                        None,
                    ),
                )
            else:
                job.status = "queued"
                add_event(
                    session,
                    job.id,
                    "The worker running this job stopped responding; job requeued, "
                    "it will resume from its last checkpoint",
                    level="warn",
                    data={},
                )
    return recovered
