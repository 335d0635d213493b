"""The job lifecycle on a real database (SQLite, or PostgreSQL with OPENFT_TEST_DATABASE_URL): every move
from every status, and moves that race."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest

from openft import ids
from openft.errors import InvalidRequest
from openft.schemas.jobs import ACTIVE_STATUSES, HELD_STATUSES, TERMINAL_STATUSES, JobStatus
from openft.services import job_reports, job_runs
from openft.services import jobs as job_service
from openft.services.auth import ensure_project
from openft.services.context import Project, ServiceContext, now
from openft.services.job_lifecycle import MOVES, IllegalMove, MoveName, job_row, move
from openft.store.tables import FineTunedModelRow, JobEventRow, JobRow

ALL_STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)
EVERY_PAIR = [(name, status) for name in MOVES for status in ALL_STATUSES]


@pytest.fixture
def project(ctx: ServiceContext) -> Project:
    return ensure_project(ctx, "personal")


def add_job(ctx: ServiceContext, project: Project, status: JobStatus, **values: Any) -> str:
    fields: dict[str, Any] = {"n_attempts": 0, "worker_id": "host-1:claim", **values}
    row = JobRow(
        id=ids.new_job_id(),
        project_id=project.id,
        model="openft-tiny",
        training_file="file-training",
        validation_file=None,
        hyperparameters_json=json.dumps({"n_epochs": 1, "batch_size": 1, "learning_rate_multiplier": 1.0}),
        method_type="supervised",
        suffix=None,
        seed=1,
        metadata_json=None,
        integrations_json="[]",
        status=status,
        model_short_id=ids.new_model_short_id(),
        created_at=now(),
        **fields,
    )
    with ctx.db.session() as session:
        session.add(row)
    return row.id


def columns(ctx: ServiceContext, job_id: str) -> dict[str, Any]:
    with ctx.db.session() as session:
        job = job_row(session, job_id)
        return {column.key: getattr(job, column.key) for column in JobRow.__table__.columns}


def test_the_status_sets_partition_the_statuses() -> None:
    assert set(ALL_STATUSES) == ACTIVE_STATUSES | TERMINAL_STATUSES
    assert not ACTIVE_STATUSES & TERMINAL_STATUSES
    assert ACTIVE_STATUSES - {"paused"} == HELD_STATUSES
    # Nothing leaves a final status, and every move ends in a status of the type.
    for rule in MOVES.values():
        assert not rule.allowed_from & TERMINAL_STATUSES
        assert rule.to in ALL_STATUSES


@pytest.mark.parametrize(("name", "status"), EVERY_PAIR, ids=[f"{n}-from-{s}" for n, s in EVERY_PAIR])
def test_every_move_from_every_status(
    ctx: ServiceContext, project: Project, name: MoveName, status: JobStatus
) -> None:
    job_id = add_job(ctx, project, status)
    before = columns(ctx, job_id)
    rule = MOVES[name]

    if status in rule.allowed_from:
        with ctx.db.session() as session:
            move(session, job_row(session, job_id), name, worker_id=None)
        after = columns(ctx, job_id)
        assert (after["status"], after["worker_id"]) == (rule.to, None)
        assert {k: v for k, v in after.items() if k not in ("status", "worker_id")} == {
            k: v for k, v in before.items() if k not in ("status", "worker_id")
        }
    else:
        with pytest.raises(IllegalMove) as raised, ctx.db.session() as session:
            move(session, job_row(session, job_id), name, worker_id=None)
        assert (raised.value.status, raised.value.move, raised.value.param) == (
            status,
            name,
            "fine_tuning_job_id",
        )
        assert raised.value.message.startswith(f"Job {job_id} has status '{status}'")
        assert columns(ctx, job_id) == before


def test_a_move_sets_its_values_in_the_same_update(ctx: ServiceContext, project: Project) -> None:
    job_id = add_job(ctx, project, "queued")
    with ctx.db.session() as session:
        job = job_row(session, job_id)
        move(session, job, "start", n_attempts=JobRow.n_attempts + 1)
        assert (job.status, job.n_attempts) == ("running", 1)  # the row is reloaded
    assert columns(ctx, job_id)["n_attempts"] == 1


def test_a_cancel_committed_after_the_worker_read_the_job_is_not_overwritten(
    ctx: ServiceContext, project: Project
) -> None:
    job_id = add_job(ctx, project, "running")
    with ctx.db.session() as worker:
        seen = job_row(worker, job_id)
        assert seen.status == "running"
        job_service.cancel_job(ctx, project, job_id)  # the user's cancel, in its own transaction
        with pytest.raises(IllegalMove):
            move(worker, seen, "succeed", fine_tuned_model="ft:late", finished_at=1)
        assert seen.status == "cancelled"
    after = columns(ctx, job_id)
    assert (after["status"], after["fine_tuned_model"]) == ("cancelled", None)


def test_a_cancel_after_success_is_refused_with_the_api_error(ctx: ServiceContext, project: Project) -> None:
    job_id = add_job(ctx, project, "running")
    with ctx.db.session() as worker:
        move(worker, job_row(worker, job_id), "succeed", worker_id=None)

    with pytest.raises(InvalidRequest) as raised:
        job_service.cancel_job(ctx, project, job_id)

    assert raised.value.status_code == 400
    assert raised.value.envelope()["error"] == {
        "message": f"Job {job_id} has status 'succeeded' and can no longer be cancelled.",
        "type": "invalid_request_error",
        "param": "fine_tuning_job_id",
        "code": None,
    }
    assert columns(ctx, job_id)["status"] == "succeeded"


def test_a_cancel_while_the_result_file_is_written_wins_over_success(
    ctx: ServiceContext, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """complete_job writes the result file between reading the job and marking it succeeded; a cancel
    committed in between is the user's decision and stays."""
    job_id = add_job(ctx, project, "running")
    register_file = job_reports.register_file

    def cancel_meanwhile(*args: Any, **kwargs: Any) -> Any:
        job_service.cancel_job(ctx, project, job_id)
        return register_file(*args, **kwargs)

    monkeypatch.setattr(job_reports, "register_file", cancel_meanwhile)
    job_reports.complete_job(ctx, job_id, trained_tokens=10, final_path=str(ctx.settings.data_dir))

    after = columns(ctx, job_id)
    assert (after["status"], after["worker_id"], after["fine_tuned_model"]) == ("cancelled", None, None)
    with ctx.db.session() as session:
        assert session.query(FineTunedModelRow).filter_by(job_id=job_id).count() == 0
        messages = [e.message for e in session.query(JobEventRow).filter_by(job_id=job_id)]
    assert "Fine-tuning job cancelled" in messages
    assert "The job has successfully completed" not in messages


def test_a_failure_reported_after_a_cancel_keeps_the_cancel(ctx: ServiceContext, project: Project) -> None:
    job_id = add_job(ctx, project, "cancelled")

    job_runs.fail_job(ctx, job_id, job_runs.JobFailure("training_failed", "boom", None))

    after = columns(ctx, job_id)
    assert (after["status"], after["worker_id"], after["error_code"]) == ("cancelled", None, None)


def test_recovery_requeues_a_lost_running_job_and_fails_it_after_the_last_attempt(
    ctx: ServiceContext, project: Project
) -> None:
    again = add_job(ctx, project, "running", heartbeat_at=0.0, n_attempts=1)
    spent = add_job(ctx, project, "running", heartbeat_at=0.0, n_attempts=3)
    paused = add_job(ctx, project, "paused", heartbeat_at=0.0)

    recovered = job_runs.recover_stale_jobs(ctx, stale_after_s=30, max_attempts=3)

    assert sorted(recovered) == sorted([again, spent])  # a paused job is held by no worker
    assert (columns(ctx, again)["status"], columns(ctx, again)["worker_id"]) == ("queued", None)
    assert (columns(ctx, spent)["status"], columns(ctx, spent)["error_code"]) == ("failed", "worker_lost")
    assert columns(ctx, paused)["status"] == "paused"
