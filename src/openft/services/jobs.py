"""The Jobs verbs the API calls: create, list, retrieve, cancel, pause, resume (events: job_events.py)."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from sqlalchemy import select

from openft import ids
from openft.errors import InvalidRequest, NotFound
from openft.inference.grammar import response_format_grammar
from openft.schemas.jobs import (
    CreateJobRequest,
    DpoHyperparameters,
    FineTuningJob,
    Hyperparameters,
    Integration,
    JobDpoHyperparameters,
    JobDpoMethod,
    JobError,
    JobHyperparameters,
    JobList,
    JobMethod,
    JobReinforcementHyperparameters,
    JobReinforcementMethod,
    JobSupervisedMethod,
    ReinforcementHyperparameters,
)
from openft.services.base_models import resolve_base_model
from openft.services.context import Project, ServiceContext, now
from openft.services.files import get_file_row
from openft.services.graders import checked_grader, resolve_judges
from openft.services.job_events import add_event, get_job_row
from openft.services.job_lifecycle import INITIAL_STATUS, move, status_of
from openft.services.webhooks import enqueue_event
from openft.store.tables import JobRow
from openft.train import spec

MAX_LIST_LIMIT = 100
MAX_METADATA_PAIRS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512
# The suffix becomes a segment of the model id (ft:base:org:suffix:id): only what round-trips in a URL
# path and cannot be mistaken for a separator.
SUFFIX_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def create_job(ctx: ServiceContext, project: Project, request: CreateJobRequest) -> FineTuningJob:
    method_type, hyperparameters, where = _requested_hyperparameters(request)
    _validate_hyperparameters(method_type, hyperparameters, where)
    grader = _reinforcement_grader(ctx, project, request) if method_type == "reinforcement" else None
    response_format = _reinforcement_response_format(request)
    validate_metadata(request.metadata)
    _validate_suffix(request.suffix)
    _refuse_integrations(request)
    resolve_base_model(ctx, project.id, request.model)
    _require_fine_tune_file(ctx, project, request.training_file, "training_file")
    if request.validation_file:
        _require_fine_tune_file(ctx, project, request.validation_file, "validation_file")
    row = JobRow(
        id=ids.new_job_id(),
        project_id=project.id,
        model=request.model,
        training_file=request.training_file,
        validation_file=request.validation_file,
        hyperparameters_json=hyperparameters.model_dump_json(),
        method_type=method_type,
        grader_json=json.dumps(grader) if grader is not None else None,
        response_format_json=response_format,
        suffix=request.suffix,
        seed=request.seed if request.seed is not None else secrets.randbelow(2**31),
        metadata_json=json.dumps(request.metadata) if request.metadata is not None else None,
        integrations_json=json.dumps([i.model_dump() for i in request.integrations or []]),
        status=INITIAL_STATUS,
        model_short_id=ids.new_model_short_id(),
        created_at=now(),
        n_attempts=0,
    )
    validating = f"Validating training file: {row.training_file}"
    if row.validation_file:
        validating += f" and validation file: {row.validation_file}"
    with ctx.db.session() as session:
        session.add(row)
        session.flush()
        add_event(session, row.id, f"Created fine-tuning job: {row.id}", data={})
        add_event(session, row.id, validating, data={})
    return to_job_object(row, project)


# The reinforcement hyperparameters echoed beside OpenAI's three ("auto" until the files are validated).
REINFORCEMENT_KEYS = ("compute_multiplier", "eval_interval", "eval_samples")


def _requested_hyperparameters(request: CreateJobRequest) -> tuple[spec.JobMethod, Hyperparameters, str]:
    """The job's method, its hyperparameters and where the request put them (an error's param prefix)."""
    method = request.method
    if method is not None and method.type == "dpo":
        if request.hyperparameters is not None:
            raise InvalidRequest(
                "The top-level hyperparameters field is only for supervised jobs: send a DPO job's "
                "hyperparameters in method.dpo.hyperparameters.",
                param="hyperparameters",
            )
        dpo = method.dpo.hyperparameters if method.dpo else None
        return "dpo", dpo or DpoHyperparameters(), "method.dpo.hyperparameters"
    if method is not None and method.type == "reinforcement":
        if request.hyperparameters is not None:
            raise InvalidRequest(
                "The top-level hyperparameters field is only for supervised jobs: send a reinforcement "
                "job's hyperparameters in method.reinforcement.hyperparameters.",
                param="hyperparameters",
            )
        if method.reinforcement is None:
            raise InvalidRequest(
                "A reinforcement job needs method.reinforcement.grader: the grader that scores its answers.",
                param="method.reinforcement.grader",
            )
        rft = method.reinforcement.hyperparameters or ReinforcementHyperparameters()
        return "reinforcement", rft, "method.reinforcement.hyperparameters"
    in_method = method.supervised.hyperparameters if method and method.supervised else None
    if in_method is None:
        return "supervised", request.hyperparameters or Hyperparameters(), "hyperparameters"
    top = request.hyperparameters
    if top is not None and top.model_dump(exclude_unset=True) != in_method.model_dump(exclude_unset=True):
        raise InvalidRequest(
            "hyperparameters and method.supervised.hyperparameters disagree. The top-level "
            "hyperparameters field is deprecated: send them only in method.supervised.hyperparameters.",
            param="hyperparameters",
        )
    return "supervised", in_method, "method.supervised.hyperparameters"


def _validate_hyperparameters(method: spec.JobMethod, hp: Hyperparameters, where: str) -> None:
    """The job spec's checks (types, ranges, LoRA vs full), answered synchronously as a 400."""
    try:
        spec.parse_hyperparameters(method, hp.model_dump())
    except spec.HyperparameterError as exc:
        raise InvalidRequest(f"Invalid hyperparameters: {exc}.", param=exc.param_at(where)) from exc


def _reinforcement_grader(ctx: ServiceContext, project: Project, request: CreateJobRequest) -> dict[str, Any]:
    """The job's grader, checked as OpenAI checks a reinforcement grader (label_model only inside multi);
    its judge models, if any, must be models the project can use."""
    assert request.method is not None and request.method.reinforcement is not None
    where = "method.reinforcement.grader"
    grader = checked_grader(request.method.reinforcement.grader, field=where, for_reinforcement=True)
    resolve_judges(ctx, project, grader, field=where)
    return grader


def _reinforcement_response_format(request: CreateJobRequest) -> str | None:
    """The response_format the job's sampled answers follow, checked as chat requests check it."""
    if request.method is None or request.method.reinforcement is None:
        return None
    response_format = request.method.reinforcement.response_format
    if response_format_grammar(response_format, param="method.reinforcement.response_format") is None:
        return None  # none, or "text"
    return json.dumps(response_format)


def _validate_suffix(suffix: str | None) -> None:
    if suffix is not None and not SUFFIX_PATTERN.fullmatch(suffix):
        raise InvalidRequest(
            "suffix may hold only letters, digits, '-' and '_' (1 to 64 of them), as it becomes part "
            f"of the model name; got {json.dumps(suffix)[:80]}.",
            param="suffix",
        )


def _refuse_integrations(request: CreateJobRequest) -> None:
    if request.integrations:
        kinds = ", ".join(sorted({integration.type for integration in request.integrations}))
        raise InvalidRequest(
            f"Integrations are not supported on this server (got {kinds}); omit integrations. Follow "
            "training through the job's events, checkpoints and result file instead.",
            param="integrations",
        )


def validate_metadata(metadata: dict[str, str] | None) -> None:
    if metadata is None:
        return
    if len(metadata) > MAX_METADATA_PAIRS:
        raise InvalidRequest(f"metadata may hold at most {MAX_METADATA_PAIRS} pairs.", param="metadata")
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY or len(value) > MAX_METADATA_VALUE:
            raise InvalidRequest(
                f"metadata keys may be at most {MAX_METADATA_KEY} characters and values at most "
                f"{MAX_METADATA_VALUE}; {key[:70]!r} is too long.",
                param="metadata",
            )


def _require_fine_tune_file(ctx: ServiceContext, project: Project, file_id: str, param: str) -> None:
    try:
        row = get_file_row(ctx, project, file_id, param=param)
    except NotFound as exc:
        raise InvalidRequest(
            f"invalid {param}: {file_id}. No such file exists in this project; upload it with "
            "client.files.create(..., purpose='fine-tune') first.",
            param=param,
        ) from exc
    if row.purpose != "fine-tune":
        raise InvalidRequest(
            f"File {file_id} has purpose '{row.purpose}'; {param} needs a file uploaded with "
            "purpose 'fine-tune'.",
            param=param,
        )
    if row.status == "error":
        details = (row.status_details or "no details were recorded").rstrip(".")
        raise InvalidRequest(
            f"File {file_id} failed processing, so it cannot be used as {param}: {details}. Fix the "
            "file and upload it again (the file's status_details says the same).",
            param=param,
        )


def to_job_object(row: JobRow, project: Project) -> FineTuningJob:
    hyperparameters = json.loads(row.hyperparameters_json)
    wire_hp = JobHyperparameters(
        batch_size=hyperparameters.get("batch_size", "auto"),
        learning_rate_multiplier=hyperparameters.get("learning_rate_multiplier", "auto"),
        n_epochs=hyperparameters.get("n_epochs", "auto"),
        lora_rank=hyperparameters.get("lora_rank"),
        full_finetune=hyperparameters.get("full_finetune"),
        max_seq_length=hyperparameters.get("max_seq_length"),
    )
    if row.method_type == "dpo":
        dpo_hp = JobDpoHyperparameters(
            **wire_hp.model_dump(),
            beta=hyperparameters.get("beta", "auto"),
            sft_weight=hyperparameters.get("sft_weight"),
        )
        method = JobMethod(type="dpo", dpo=JobDpoMethod(hyperparameters=dpo_hp))
    elif row.method_type == "reinforcement":
        rft_hp = JobReinforcementHyperparameters(
            **wire_hp.model_dump(),
            **{key: hyperparameters.get(key, "auto") for key in REINFORCEMENT_KEYS},
            reasoning_effort=hyperparameters.get("reasoning_effort", "default"),
        )
        method = JobMethod(
            type="reinforcement",
            reinforcement=JobReinforcementMethod(
                grader=json.loads(row.grader_json or "{}"),
                hyperparameters=rft_hp,
                response_format=json.loads(row.response_format_json) if row.response_format_json else None,
            ),
        )
    else:
        method = JobMethod(type="supervised", supervised=JobSupervisedMethod(hyperparameters=wire_hp))
    return FineTuningJob(
        id=row.id,
        created_at=row.created_at,
        error=JobError(code=row.error_code, message=row.error_message, param=row.error_param),
        fine_tuned_model=row.fine_tuned_model,
        finished_at=row.finished_at,
        hyperparameters=wire_hp if row.method_type == "supervised" else None,
        model=row.model,
        organization_id=project.id,
        result_files=[row.result_file_id] if row.result_file_id else [],
        seed=row.seed,
        status=status_of(row),
        trained_tokens=row.trained_tokens,
        training_file=row.training_file,
        validation_file=row.validation_file,
        estimated_finish=row.estimated_finish,
        integrations=[Integration.model_validate(i) for i in json.loads(row.integrations_json)],
        metadata=json.loads(row.metadata_json) if row.metadata_json else None,
        method=method,
        user_provided_suffix=row.suffix,
    )


def retrieve_job(ctx: ServiceContext, project: Project, job_id: str) -> FineTuningJob:
    with ctx.db.session() as session:
        return to_job_object(get_job_row(session, project, job_id), project)


def list_jobs(
    ctx: ServiceContext, project: Project, *, after: str | None, limit: int, metadata: dict[str, str]
) -> JobList:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}.", param="limit")
    query = select(JobRow).where(JobRow.project_id == project.id).order_by(JobRow.seq.desc())
    with ctx.db.session() as session:
        if after:
            query = query.where(JobRow.seq < get_job_row(session, project, after).seq)
        rows = list(session.scalars(query))
    if metadata:
        rows = [r for r in rows if _metadata_matches(r.metadata_json, metadata)]
    return JobList(data=[to_job_object(r, project) for r in rows[:limit]], has_more=len(rows) > limit)


def _metadata_matches(metadata_json: str | None, wanted: dict[str, str]) -> bool:
    have = json.loads(metadata_json) if metadata_json else {}
    return all(have.get(key) == value for key, value in wanted.items())


def cancel_job(ctx: ServiceContext, project: Project, job_id: str) -> FineTuningJob:
    with ctx.db.session() as session:
        row = get_job_row(session, project, job_id)
        # A running job's worker sees the status change at its next heartbeat and stops the recipe.
        move(session, row, "cancel", finished_at=now())
        add_event(session, row.id, "Fine-tuning job cancelled", data={})
        enqueue_event(session, row.project_id, "fine_tuning.job.cancelled", row.id)
        return to_job_object(row, project)


def pause_job(ctx: ServiceContext, project: Project, job_id: str) -> FineTuningJob:
    with ctx.db.session() as session:
        row = get_job_row(session, project, job_id)
        move(session, row, "pause")
        add_event(session, row.id, "Fine-tuning job paused", data={})
        return to_job_object(row, project)


def resume_job(ctx: ServiceContext, project: Project, job_id: str) -> FineTuningJob:
    with ctx.db.session() as session:
        row = get_job_row(session, project, job_id)
        move(session, row, "resume", worker_id=None)
        add_event(session, row.id, "Fine-tuning job resumed, moving job to queued state", data={})
        return to_job_object(row, project)
