"""The Jobs verbs the worker calls: claim, validate files, fail, heartbeat, recover (start, reports and
success: job_reports.py).

Status changes go through services.job_lifecycle. A job is held by one worker at a time through
`worker_id`, claimed with a single conditional UPDATE (atomic on SQLite; FOR UPDATE SKIP LOCKED on
PostgreSQL so many workers share one queue).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from openft.data import CheckReport, check_file
from openft.errors import InvalidRequest
from openft.schemas.jobs import HELD_STATUSES, JobStatus
from openft.services.base_models import resolve_base_model
from openft.services.context import ServiceContext, now
from openft.services.job_events import add_event
from openft.services.job_lifecycle import IllegalMove, job_row, move, status_of
from openft.services.reinforcement_files import ReinforcementFileError, check_reinforcement_file
from openft.services.webhooks import enqueue_event
from openft.store.tables import FileRow, JobRow
from openft.train import spec

MAX_LINT_EVENTS = 5


@dataclass(frozen=True)
class JobFailure(Exception):
    code: str
    message: str
    param: str | None


def claim_job(ctx: ServiceContext, worker_name: str, status: JobStatus) -> str | None:
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


def validate_job_files(ctx: ServiceContext, job_id: str) -> None:
    """validating_files -> queued with concrete hyperparameters, or -> failed naming line and field.

    The full data checker runs outside any transaction (a big file takes a while); lint findings become
    warning events and never block.
    """
    with ctx.db.session() as session:
        job = job_row(session, job_id)
        if job.status != "validating_files":
            job.worker_id = None
            return
        paths = {
            param: _file_path(ctx, session, file_id)
            for param, file_id in (
                ("training_file", job.training_file),
                ("validation_file", job.validation_file),
            )
            if file_id
        }
        file_ids = {"training_file": job.training_file, "validation_file": job.validation_file or ""}
        method = job_method(job)
        grader = json.loads(job.grader_json) if job.grader_json else None
    if grader is not None:
        _validate_reinforcement_files(ctx, job_id, paths, file_ids, grader)
        return
    failure, report = _check_files(paths, method, file_ids)
    with ctx.db.session() as session:
        job = job_row(session, job_id)
        if job.status != "validating_files":  # cancelled while the check ran
            job.worker_id = None
            return
        if failure is not None or report is None:
            _fail(
                session,
                job,
                failure or JobFailure("invalid_training_file", "The training file is gone.", None),
            )
            return
        if not _queue(ctx, session, job, report.training.n_valid_examples):
            return
        for finding in report.lint[:MAX_LINT_EVENTS]:
            lines = ", ".join(str(n) for n in finding.lines)
            add_event(
                session,
                job.id,
                f"Data warning ({finding.file} file, lines {lines}): {finding.message} {finding.advice}",
                level="warn",
                data={"code": finding.code, "n_examples": finding.n_examples},
            )
        add_event(session, job.id, "Files validated, moving job to queued state", data={})


def _validate_reinforcement_files(
    ctx: ServiceContext,
    job_id: str,
    paths: dict[str, Path | None],
    file_ids: dict[str, str],
    grader: dict[str, Any],
) -> None:
    """validating_files -> queued (or failed) for a reinforcement job: prompts its grader can score."""
    failure: JobFailure | None = None
    n_train = 0
    for param, path in paths.items():
        purpose = param.removesuffix("_file")
        if path is None:
            message = (
                f"The job failed due to an invalid {purpose} file. The file was deleted before it was read."
            )
            failure = JobFailure(f"invalid_{param}", message, param)
            break
        try:
            n = check_reinforcement_file(path, purpose, file_ids[param], grader)
        except ReinforcementFileError as exc:
            failure = JobFailure(f"invalid_{param}", exc.message, param)
            break
        n_train = n if param == "training_file" else n_train
    with ctx.db.session() as session:
        job = job_row(session, job_id)
        if job.status != "validating_files":
            job.worker_id = None
            return
        if failure is not None:
            _fail(session, job, failure)
            return
        if not _queue(ctx, session, job, n_train):
            return
        add_event(session, job.id, "Files validated, moving job to queued state", data={})


def _file_path(ctx: ServiceContext, session: Any, file_id: str) -> Path | None:
    row = session.scalar(select(FileRow).where(FileRow.id == file_id))
    return ctx.files.path(row.blob_name) if row is not None else None


def _check_files(
    paths: dict[str, Path | None], method: spec.JobMethod, file_ids: dict[str, str]
) -> tuple[JobFailure | None, CheckReport | None]:
    for param, path in paths.items():
        if path is None:
            which = param.removesuffix("_file")
            message = (
                f"The job failed due to an invalid {which} file. The file was deleted before it was read."
            )
            return JobFailure(f"invalid_{param}", message, param), None
    training_path = paths["training_file"]
    assert training_path is not None
    report = check_file(training_path, validation_path=paths.get("validation_file"))
    blocking = report.blocking_error()
    if blocking is not None:
        return JobFailure(blocking.code, blocking.message, blocking.param), report
    needed = "preference" if method == "dpo" else "chat"
    for file_report in (report.training, report.validation):
        if file_report is not None and file_report.format != needed:
            param = f"{file_report.purpose}_file"
            message = _wrong_format(file_report, method, file_ids[param])
            return JobFailure(f"invalid_{param}", message, param), report
    return None, report


def _wrong_format(file_report: Any, method: spec.JobMethod, file_id: str) -> str:
    """OpenAI's wording for a file whose format does not suit the job's method."""
    start = f"The job failed due to an invalid {file_report.purpose} file. Invalid file format. "
    if file_report.format == "chat" and method != "supervised":
        return start + (
            f"Input file {file_id} is in the fine-tune-chat format, but the specified fine-tuning job is "
            f"not using 'supervised' as the training method (provided method={method}). A DPO job needs "
            'preference examples: {"input": {"messages": [...]}, "preferred_output": [...], '
            '"non_preferred_output": [...]}.'
        )
    return start + (
        f"The file is in the {file_report.format} format, but the specified fine-tuning job is using "
        f"method={method}, which needs " + ("preference examples." if method == "dpo" else "chat messages.")
    )


def model_unavailable(exc: InvalidRequest) -> JobFailure:
    """A job whose model can no longer be used by its project: deleted, or no longer shared with it."""
    return JobFailure("model_not_available", exc.message, "model")


def job_method(job: JobRow) -> spec.JobMethod:
    if job.method_type in ("dpo", "reinforcement"):
        return job.method_type  # type: ignore[return-value]
    return "supervised"


def _queue(ctx: ServiceContext, session: Any, job: JobRow, n_train: int) -> bool:
    """validating_files -> queued, with the hyperparameters the job spec decides for `n_train` training
    examples; False when the job failed instead or was cancelled meanwhile (the worker lets go of it)."""
    try:
        defaults = resolve_base_model(ctx, job.project_id, job.model).defaults
    except InvalidRequest as exc:  # the model was deleted, or its permission revoked, since create
        _fail(session, job, model_unavailable(exc))
        return False
    resolved = spec.resolved_hyperparameters(
        json.loads(job.hyperparameters_json),
        defaults=defaults,
        n_train_examples=n_train,
        method=job_method(job),
    )
    try:
        move(session, job, "validate", worker_id=None, hyperparameters_json=json.dumps(resolved))
    except IllegalMove:  # cancelled since the job was read
        job.worker_id = None
        return False
    return True


def _fail(session: Any, job: JobRow, failure: JobFailure) -> None:
    """The job fails unless it has already finished (a cancel that came first is kept); either way the
    worker lets go of it."""
    try:
        move(
            session,
            job,
            "fail",
            worker_id=None,
            finished_at=now(),
            error_code=failure.code,
            error_message=failure.message,
            error_param=failure.param,
        )
    except IllegalMove:
        job.worker_id = None
        return
    add_event(session, job.id, failure.message, level="error", data={})
    enqueue_event(session, job.project_id, "fine_tuning.job.failed", job.id)


def fail_job(ctx: ServiceContext, job_id: str, failure: JobFailure) -> None:
    with ctx.db.session() as session:
        _fail(session, job_row(session, job_id), failure)


def heartbeat(ctx: ServiceContext, job_id: str, estimated_finish: int | None = None) -> JobStatus:
    """Record that the worker is alive; returns the job's status (a cancel or pause shows up here)."""
    with ctx.db.session() as session:
        job = job_row(session, job_id)
        job.heartbeat_at = time.time()
        if estimated_finish is not None and job.status == "running":
            job.estimated_finish = estimated_finish
        return status_of(job)


def expire_claims_of_dead_local_workers(ctx: ServiceContext, host: str) -> int:
    """Claims held by workers of this machine whose process is gone (a killed and restarted server)
    expire now, so their jobs resume at once instead of after the heartbeat timeout."""
    expired = 0
    with ctx.db.session() as session:
        for job in session.scalars(select(JobRow).where(JobRow.worker_id.like(f"{host}-%"))):
            pid = _local_pid(job.worker_id or "", host)
            if pid is not None and pid != os.getpid() and not _process_alive(pid):
                job.heartbeat_at = 0.0
                expired += 1
    return expired


def _local_pid(worker_id: str, host: str) -> int | None:
    """The pid in a default worker name, `{host}-{pid}:{claim token}`."""
    name = worker_id.split(":", 1)[0]
    pid = name.removeprefix(f"{host}-")
    return int(pid) if pid.isdigit() else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def recover_stale_jobs(ctx: ServiceContext, *, stale_after_s: float, max_attempts: int) -> list[str]:
    """Jobs whose worker stopped sending heartbeats go back to the queue (and resume), or fail."""
    cutoff = time.time() - stale_after_s
    recovered = []
    with ctx.db.session() as session:
        stale = list(
            session.scalars(
                select(JobRow).where(
                    JobRow.worker_id.is_not(None),
                    JobRow.heartbeat_at < cutoff,
                    JobRow.status.in_(HELD_STATUSES),
                )
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
                try:
                    move(session, job, "requeue")
                except IllegalMove:  # cancelled or paused since it was read: nothing to resume
                    continue
                add_event(
                    session,
                    job.id,
                    "The worker running this job stopped responding; job requeued, "
                    "it will resume from its last checkpoint",
                    level="warn",
                    data={},
                )
    return recovered
