"""Turning a running recipe's reports into OpenAI's job events, checkpoints, result file and model.

The moves to running and to succeeded go through services.job_lifecycle, like every status change.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from openft import ids
from openft.errors import InvalidRequest
from openft.services.base_models import resolve_base_model
from openft.services.context import Project, ServiceContext, now
from openft.services.files import register_file
from openft.services.graders import resolve_judges
from openft.services.job_events import add_event
from openft.services.job_lifecycle import IllegalMove, job_row, move
from openft.services.job_runs import fail_job, job_method, model_unavailable
from openft.services.webhooks import enqueue_event
from openft.store.tables import CheckpointRow, FileRow, FineTunedModelRow, JobRow, ProjectRow
from openft.train import spec

RESULTS_FILENAME = "step_metrics.csv"


@dataclass(frozen=True)
class RunSpec:
    """Everything the training subprocess needs; written as JSON, so no torch is needed to make it."""

    job_id: str
    base_model: str
    models_dir: str
    init_adapter_path: str | None
    training_file: str
    validation_file: str | None
    output_dir: str
    hyperparameters: dict[str, Any]
    seed: int
    resume_from: str | None
    precision: str = "auto"  # Settings.train_precision
    method: str = "supervised"  # the job's method.type: which recipe runs
    grader: dict[str, Any] | None = None  # reinforcement jobs: the grader, as checked at creation
    # The grader's judge models as the engine loads them ({name: ModelRef fields}), resolved at start.
    judges: dict[str, dict[str, Any]] | None = None
    # Reinforcement jobs: the response_format their sampled answers follow.
    response_format: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def start_run(ctx: ServiceContext, job_id: str) -> RunSpec | None:
    """queued -> running; None when the job was cancelled or paused meanwhile, or failed because its
    model can no longer be used."""
    with ctx.db.session() as session:
        job = job_row(session, job_id)
        project_id, model = job.project_id, job.model
        grader = json.loads(job.grader_json) if job.grader_json else None
        project = Project(project_id, _project(session, project_id).name)
    try:
        base = resolve_base_model(ctx, project_id, model)
        judges = resolve_judges(ctx, project, grader, field="grader") if grader else None
    except InvalidRequest as exc:  # deleted, or no longer shared with the job's project
        fail_job(ctx, job_id, model_unavailable(exc))
        return None
    with ctx.db.session() as session:
        job = job_row(session, job_id)
        try:
            move(session, job, "start", n_attempts=JobRow.n_attempts + 1)
        except IllegalMove:
            job.worker_id = None
            return None
        output_dir = ctx.settings.jobs_dir / job.id
        resume_from = latest_resumable_checkpoint(output_dir)
        add_event(
            session,
            job.id,
            "Fine-tuning job started"
            if resume_from is None
            else f"Fine-tuning job resumed from {Path(resume_from).name}",
            data=None,
        )
        return RunSpec(
            job_id=job.id,
            base_model=base.name,
            models_dir=str(ctx.settings.models_dir),
            init_adapter_path=base.init_adapter_path,
            training_file=str(_blob_path(ctx, session, job.training_file)),
            validation_file=str(_blob_path(ctx, session, job.validation_file))
            if job.validation_file
            else None,
            output_dir=str(output_dir),
            hyperparameters=json.loads(job.hyperparameters_json),
            seed=job.seed,
            resume_from=resume_from,
            precision=ctx.settings.train_precision,
            method=job_method(job),
            grader=grader,
            judges=judges or None,
            response_format=json.loads(job.response_format_json) if job.response_format_json else None,
        )


def latest_resumable_checkpoint(output_dir: Path) -> str | None:
    latest = spec.RunLayout(output_dir).latest_resumable()
    return str(latest) if latest is not None else None


def record_metrics(
    ctx: ServiceContext,
    job_id: str,
    step: int,
    total_steps: int,
    values: dict[str, float],
    *,
    tokens_per_s: float | None = None,
    seconds_left: float | None = None,
) -> None:
    parts = [f"training loss={values['train_loss']:.2f}"] if "train_loss" in values else []
    if "valid_loss" in values:
        parts.append(f"validation loss={values['valid_loss']:.2f}")
    if "full_valid_loss" in values:
        parts.append(f"full validation loss={values['full_valid_loss']:.2f}")
    if "train_reward_accuracy" in values:  # DPO: how often the preferred output wins
        parts.append(f"reward accuracy={values['train_reward_accuracy']:.2f}")
    pace = {}
    if tokens_per_s is not None:
        parts.append(f"{tokens_per_s:,.0f} tokens/s")
        pace["tokens_per_s"] = round(tokens_per_s, 1)
    if seconds_left is not None and step < total_steps:
        parts.append(f"about {_duration(seconds_left)} left")
    with ctx.db.session() as session:
        add_event(
            session,
            job_id,
            f"Step {step}/{total_steps}: " + ", ".join(parts),
            type_="metrics",
            data={"step": step, "total_steps": total_steps, **values, **pace},
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def record_checkpoint(
    ctx: ServiceContext, job_id: str, *, step: int, total_steps: int, path: str, metrics: dict[str, float]
) -> None:
    """A checkpoint is a model of its own; the last epoch's carries the final model's name."""
    with ctx.db.session() as session:
        job = job_row(session, job_id)
        project = _project(session, job.project_id)
        short_id = job.model_short_id if step >= total_steps else ids.new_model_short_id()
        name = ids.fine_tuned_model_name(_root_base(ctx, job), project.name, job.suffix, short_id)
        if step < total_steps:
            name += f":ckpt-step-{step}"
        session.add(
            CheckpointRow(
                id=ids.new_checkpoint_id(),
                job_id=job_id,
                created_at=now(),
                step_number=step,
                model_name=name,
                path=path,
                metrics_json=json.dumps({"step": step, **metrics}),
            )
        )
        session.merge(
            FineTunedModelRow(
                name=name,
                project_id=job.project_id,
                job_id=job_id,
                base_model=_root_base(ctx, job),
                path=path,
                created_at=now(),
            )
        )
        add_event(session, job_id, f"Checkpoint created at step {step} with Snapshot ID: {name}", data={})
        session.flush()
        _drop_old_checkpoints(session, job_id)


def _drop_old_checkpoints(session: Any, job_id: str) -> None:
    rows = list(
        session.scalars(
            select(CheckpointRow)
            .where(CheckpointRow.job_id == job_id)
            .order_by(CheckpointRow.step_number.desc())
        )
    )
    for old in rows[spec.KEEP_CHECKPOINTS :]:
        session.execute(delete(FineTunedModelRow).where(FineTunedModelRow.name == old.model_name))
        session.delete(old)


def complete_job(ctx: ServiceContext, job_id: str, *, trained_tokens: int, final_path: str | None) -> None:
    with ctx.db.session() as session:
        job = job_row(session, job_id)
        if job.status != "running":  # cancelled while the last step ran: keep the user's decision
            job.worker_id = None
            return
        project = Project(job.project_id, _project(session, job.project_id).name)
        base = _root_base(ctx, job)
    csv_path = spec.RunLayout(ctx.settings.jobs_dir / job_id).results_file
    encoded = base64.b64encode(csv_path.read_bytes() if csv_path.exists() else b"")
    blob = ctx.files.write_all([encoded])
    result = register_file(
        ctx, project, filename=RESULTS_FILENAME, purpose="fine-tune-results", blob=blob, expires_after_s=None
    )
    final_name = ids.fine_tuned_model_name(base, project.name, job.suffix, job.model_short_id)
    with ctx.db.session() as session:
        job = job_row(session, job_id)
        try:
            move(
                session,
                job,
                "succeed",
                worker_id=None,
                finished_at=now(),
                fine_tuned_model=final_name,
                trained_tokens=trained_tokens,
                result_file_id=result.id,
                estimated_finish=None,
            )
        except IllegalMove:  # cancelled while the result file was written: the user's decision stands
            job.worker_id = None
            return
        if session.get(FineTunedModelRow, final_name) is None and final_path:
            session.add(
                FineTunedModelRow(
                    name=final_name,
                    project_id=job.project_id,
                    job_id=job_id,
                    base_model=base,
                    path=final_path,
                    created_at=now(),
                )
            )
        add_event(session, job_id, f"New fine-tuned model created: {final_name}", data={})
        add_event(session, job_id, "The job has successfully completed", data={})
        enqueue_event(session, job.project_id, "fine_tuning.job.succeeded", job_id)


def mark_stopped(ctx: ServiceContext, job_id: str) -> None:
    """The recipe stopped on request (cancel or pause): release the job; its status is already set."""
    with ctx.db.session() as session:
        job_row(session, job_id).worker_id = None


def _project(session: Any, project_id: str) -> ProjectRow:
    project = session.get(ProjectRow, project_id)
    assert isinstance(project, ProjectRow)
    return project


def _root_base(ctx: ServiceContext, job: JobRow) -> str:
    return resolve_base_model(ctx, job.project_id, job.model).name


def _blob_path(ctx: ServiceContext, session: Any, file_id: str) -> Path:
    row = session.scalar(select(FileRow).where(FileRow.id == file_id))
    assert row is not None
    return ctx.files.path(row.blob_name)


def record_message(ctx: ServiceContext, job_id: str, text: str, level: str = "info") -> None:
    with ctx.db.session() as session:
        add_event(
            session, job_id, text, level=level if level in ("info", "warn", "error") else "info", data={}
        )
