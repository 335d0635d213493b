"""The evaluation that ends a job with a validation file: what to run, its event, and its stored report.

When a job that has a validation file succeeds, the worker (`openft.worker.job_evaluation`) compares the
model the job started from with the fine-tuned one on (the first `job_eval_max_examples` of) that file,
through the inference engine that serves chat, and records the headline as a job event. The full result
and the HTML report stay in the job's directory, served by `GET /v1/fine_tuning/jobs/{id}/evaluation`
and `.../evaluation/report` (openft extensions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from openft.errors import NotFound, OpenFTError
from openft.schemas.jobs import EVALUATION_EVENT_KIND
from openft.services.base_models import resolve_base_model
from openft.services.context import Project, ServiceContext
from openft.services.graders import resolve_judges
from openft.services.job_events import add_event, get_job_row
from openft.store.tables import CheckpointRow, FileRow, FineTunedModelRow, JobRow, ProjectRow
from openft.train import spec

# In the job's evaluation directory: the full comparison (openft.comparison's JSON) and its HTML report.
RESULT_FILE = "evaluation.json"
REPORT_FILE = "evaluation.html"


@dataclass(frozen=True)
class JobEvaluationSpec:
    """What the worker compares, and where it writes the result."""

    job_id: str
    candidate_label: str  # the job's fine-tuned model name
    candidate_path: str
    baseline_label: str  # the model the job started from (a base model, or the ft: model it continued)
    baseline_path: str | None  # None: resolve baseline_label in the catalog under models_dir
    models_dir: str
    test_file: str
    test_file_id: str
    max_examples: int
    out_dir: str
    # Reinforcement jobs: the grader that scores both models' answers, its judges as the engine loads
    # them, and the answers' token budget (the job's reasoning_effort); None for other methods.
    grader: dict[str, Any] | None = None
    judges: dict[str, dict[str, Any]] | None = None
    answer_tokens: int | None = None


def evaluation_dir(ctx: ServiceContext, job_id: str) -> Path:
    return ctx.settings.jobs_dir / job_id / "evaluation"


def evaluation_spec(ctx: ServiceContext, job_id: str) -> JobEvaluationSpec | None:
    """What to evaluate for a job that just succeeded; None when there is nothing to do (no validation
    file, evaluation turned off, or the model it started from is gone)."""
    max_examples = ctx.settings.job_eval_max_examples
    with ctx.db.session() as session:
        job = session.scalar(select(JobRow).where(JobRow.id == job_id))
        if job is None or job.status != "succeeded" or not job.validation_file or max_examples <= 0:
            return None
        candidate = session.get(FineTunedModelRow, job.fine_tuned_model)
        validation = session.scalar(select(FileRow).where(FileRow.id == job.validation_file))
        if candidate is None or validation is None:
            return None
        baseline_label, baseline_path = job.model, None
        if job.model.startswith("ft:"):  # a continued fine-tune is compared with the model it continued
            started_from = session.get(FineTunedModelRow, job.model)
            if started_from is None:
                return None
            baseline_path = started_from.path
        else:
            baseline_label = resolve_base_model(ctx, job.project_id, job.model).name
        grader = json.loads(job.grader_json) if job.grader_json else None
        owner = session.get(ProjectRow, job.project_id)
        judges = _judges(ctx, Project(job.project_id, owner.name if owner else ""), grader)
        effort = json.loads(job.hyperparameters_json).get("reasoning_effort", "default")
        return JobEvaluationSpec(
            job_id=job.id,
            candidate_label=candidate.name,
            candidate_path=candidate.path,
            baseline_label=baseline_label,
            baseline_path=baseline_path,
            models_dir=str(ctx.settings.models_dir),
            test_file=str(ctx.files.path(validation.blob_name)),
            test_file_id=validation.id,
            max_examples=max_examples,
            out_dir=str(evaluation_dir(ctx, job.id)),
            grader=grader,
            judges=judges,
            answer_tokens=spec.ANSWER_TOKENS.get(effort, spec.ANSWER_TOKENS["default"]) if grader else None,
        )


def _judges(
    ctx: ServiceContext, project: Project, grader: dict[str, Any] | None
) -> dict[str, dict[str, Any]] | None:
    """A reinforcement grader's judges as the engine loads them; a judge gone since the job ran leaves
    its samples flagged (model_grader_server_error) rather than stopping the evaluation."""
    if grader is None:
        return None
    try:
        return resolve_judges(ctx, project, grader)
    except OpenFTError:
        return {}


def record_evaluation(ctx: ServiceContext, job_id: str, summary: dict[str, Any]) -> None:
    """The headline as a job event: `Evaluation on 50 validation examples: exact match: base 0.04 → ...`."""
    lines = list(summary["summary_lines"])
    reward_accuracy = _held_out_reward_accuracy(ctx, job_id)
    if reward_accuracy is not None:  # DPO: how often the fine-tuned model prefers the preferred output
        lines.insert(0, f"held-out reward accuracy {reward_accuracy:.2f}")
    text = f"Evaluation on {summary['n_examples']} validation examples: " + "; ".join(lines)
    data = {
        "kind": EVALUATION_EVENT_KIND,
        "n_examples": summary["n_examples"],
        "primary_metric": summary["primary_metric"],
        "baseline": summary["baseline"],
        "fine_tuned": summary["fine_tuned"],
        "report": f"/v1/fine_tuning/jobs/{job_id}/evaluation/report",
    }
    if reward_accuracy is not None:
        data["held_out_reward_accuracy"] = reward_accuracy
    with ctx.db.session() as session:
        add_event(session, job_id, text, data=data)


def _held_out_reward_accuracy(ctx: ServiceContext, job_id: str) -> float | None:
    """A DPO job's reward accuracy on the whole validation file at its last epoch, as training measured
    it (the share of held-out pairs whose preferred output the model favours more than the reference)."""
    with ctx.db.session() as session:
        last = session.scalar(
            select(CheckpointRow)
            .where(CheckpointRow.job_id == job_id)
            .order_by(CheckpointRow.step_number.desc())
        )
    if last is None:
        return None
    value = json.loads(last.metrics_json).get("full_valid_reward_accuracy")
    return float(value) if isinstance(value, int | float) else None


def record_evaluation_failure(ctx: ServiceContext, job_id: str, problem: str) -> None:
    with ctx.db.session() as session:
        add_event(
            session,
            job_id,
            f"Evaluation on the validation file failed: {problem}",
            level="warn",
            data={"kind": EVALUATION_EVENT_KIND},
        )


def get_evaluation(ctx: ServiceContext, project: Project, job_id: str) -> dict[str, Any]:
    """The stored comparison (every example, both answers, every score) of one of the project's jobs."""
    path = _stored(ctx, project, job_id, RESULT_FILE)
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return {**result, "job_id": job_id}  # object: "openft.eval.comparison"


def evaluation_report_path(ctx: ServiceContext, project: Project, job_id: str) -> Path:
    return _stored(ctx, project, job_id, REPORT_FILE)


def _stored(ctx: ServiceContext, project: Project, job_id: str, filename: str) -> Path:
    with ctx.db.session() as session:
        job = get_job_row(session, project, job_id)  # 404 for another project's job
        status, has_validation = job.status, bool(job.validation_file)
    path = evaluation_dir(ctx, job_id) / filename
    if path.is_file():
        return path
    code = None
    if not has_validation:
        why = "it has no validation file; evaluations run on a job's validation file when it succeeds"
    elif status != "succeeded":
        why = f"it is {status}; the evaluation runs once it has succeeded"
    elif ctx.settings.job_eval_max_examples <= 0:
        why = "evaluations are turned off on this server (OPENFT_JOB_EVAL_MAX_EXAMPLES=0)"
        code = "evaluation_disabled"  # `openft jobs follow` stops waiting for one
    else:
        why = "its evaluation is still running or failed (see the job's events)"
    raise NotFound(
        f"Fine-tuning job {job_id} has no evaluation: {why}", param="fine_tuning_job_id", code=code
    )
