"""Fine-tuning jobs, events, checkpoints and models (reference §3, §4)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema

# Hyperparameters are taken exactly as the JSON body holds them: no coercion (true is not 1, "yes" is not
# true), so that the service's checks can refuse a wrong one saying which values are accepted.
_AUTO, _NULL = {"const": "auto"}, {"type": "null"}
AutoInt = Annotated[JsonValue, WithJsonSchema({"anyOf": [_AUTO, {"type": "integer"}, _NULL]})]
AutoFloat = Annotated[
    JsonValue, WithJsonSchema({"anyOf": [_AUTO, {"type": "number", "exclusiveMinimum": 0}, _NULL]})
]
OptionalInt = Annotated[JsonValue, WithJsonSchema({"anyOf": [{"type": "integer"}, _NULL]})]
OptionalBool = Annotated[JsonValue, WithJsonSchema({"anyOf": [{"type": "boolean"}, _NULL]})]
OptionalFloat = Annotated[JsonValue, WithJsonSchema({"anyOf": [{"type": "number"}, _NULL]})]


JobStatus = Literal["validating_files", "queued", "running", "paused", "succeeded", "failed", "cancelled"]
# Not finished yet: a job in one of these can still be cancelled.
ACTIVE_STATUSES: frozenset[JobStatus] = frozenset({"validating_files", "queued", "running", "paused"})
# A worker may hold (claim) a job in one of these; a paused job waits for no one.
HELD_STATUSES: frozenset[JobStatus] = frozenset({"validating_files", "queued", "running"})
# Final: nothing moves a job out of these.
TERMINAL_STATUSES: frozenset[JobStatus] = frozenset({"succeeded", "failed", "cancelled"})


def _is_none(value: object) -> bool:
    return value is None


# `data.kind` of the event that reports the end-of-job evaluation (its headline or its failure): clients
# such as `openft jobs follow` recognise it by this, not by the wording of its message.
EVALUATION_EVENT_KIND = "evaluation"


class Hyperparameters(BaseModel):
    """OpenAI's three hyperparameters plus openft's documented extensions (LoRA rank, full, max length)."""

    model_config = ConfigDict(extra="forbid")

    batch_size: AutoInt = "auto"
    learning_rate_multiplier: AutoFloat = "auto"
    n_epochs: AutoInt = "auto"
    # openft extensions; null/absent means the base model's default.
    lora_rank: OptionalInt = None
    full_finetune: OptionalBool = None
    max_seq_length: OptionalInt = None


class SupervisedMethod(BaseModel):
    hyperparameters: Hyperparameters | None = None


class DpoHyperparameters(Hyperparameters):
    """`method.dpo.hyperparameters`: the supervised ones plus `beta` ("auto" or a number in (0, 2]) and
    openft's `sft_weight` (null: the default)."""

    beta: AutoFloat = "auto"
    sft_weight: OptionalFloat = None


class DpoMethod(BaseModel):
    hyperparameters: DpoHyperparameters | None = None


class ReinforcementHyperparameters(Hyperparameters):
    """`method.reinforcement.hyperparameters`: the supervised ones plus OpenAI's four for RFT."""

    compute_multiplier: AutoFloat = "auto"
    eval_interval: AutoInt = "auto"
    eval_samples: AutoInt = "auto"
    reasoning_effort: JsonValue = "default"


class ReinforcementMethod(BaseModel):
    grader: dict[str, Any]
    hyperparameters: ReinforcementHyperparameters | None = None
    response_format: dict[str, Any] | None = None


class Method(BaseModel):
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: SupervisedMethod | None = None
    dpo: DpoMethod | None = None
    reinforcement: ReinforcementMethod | None = None


class WandbIntegration(BaseModel):
    project: str
    name: str | None = None
    entity: str | None = None
    tags: list[str] | None = None


class Integration(BaseModel):
    type: Literal["wandb"]
    wandb: WandbIntegration


class CreateJobRequest(BaseModel):
    model: str
    training_file: str
    validation_file: str | None = None
    hyperparameters: Hyperparameters | None = None
    method: Method | None = None
    suffix: str | None = Field(default=None, min_length=1, max_length=64)
    seed: int | None = Field(default=None, ge=0, le=2147483647)
    integrations: list[Integration] | None = None
    metadata: dict[str, str] | None = None


class JobError(BaseModel):
    code: str | None
    message: str | None
    param: str | None


class JobHyperparameters(BaseModel):
    """A job's hyperparameters as the API answers them: "auto" until the files are validated, then the
    values training uses (null where the request sent null, until then). openft's extensions appear
    only when the request set them."""

    batch_size: Literal["auto"] | int | None
    # int and float both: a multiplier sent as 2 is answered as 2, not 2.0.
    learning_rate_multiplier: Literal["auto"] | int | float | None
    n_epochs: Literal["auto"] | int | None
    lora_rank: int | None = Field(default=None, exclude_if=_is_none)
    full_finetune: bool | None = Field(default=None, exclude_if=_is_none)
    max_seq_length: int | None = Field(default=None, exclude_if=_is_none)


class JobSupervisedMethod(BaseModel):
    hyperparameters: JobHyperparameters


class JobDpoHyperparameters(JobHyperparameters):
    beta: Literal["auto"] | int | float | None
    sft_weight: int | float | None = Field(default=None, exclude_if=_is_none)


class JobDpoMethod(BaseModel):
    hyperparameters: JobDpoHyperparameters


class JobReinforcementHyperparameters(JobHyperparameters):
    compute_multiplier: Literal["auto"] | int | float | None
    eval_interval: Literal["auto"] | int | None
    eval_samples: Literal["auto"] | int | None
    reasoning_effort: str | None


class JobReinforcementMethod(BaseModel):
    grader: dict[str, Any]
    hyperparameters: JobReinforcementHyperparameters
    response_format: dict[str, Any] | None = None


class JobMethod(BaseModel):
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: JobSupervisedMethod | None = Field(default=None, exclude_if=_is_none)
    dpo: JobDpoMethod | None = Field(default=None, exclude_if=_is_none)
    reinforcement: JobReinforcementMethod | None = Field(default=None, exclude_if=_is_none)


class FineTuningJob(BaseModel):
    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: JobError
    fine_tuned_model: str | None
    finished_at: int | None
    hyperparameters: JobHyperparameters | None  # null for DPO and reinforcement jobs, as OpenAI answers
    model: str
    organization_id: str
    result_files: list[str]
    seed: int
    status: JobStatus
    trained_tokens: int | None
    training_file: str
    validation_file: str | None
    estimated_finish: int | None
    integrations: list[Integration]
    metadata: dict[str, str] | None
    method: JobMethod
    user_provided_suffix: str | None
    usage_metrics: None = None
    shared_with_openai: bool = False


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FineTuningJob]
    has_more: bool


class JobEvent(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    type: Literal["message", "metrics"]
    data: dict[str, Any] | None


class JobEventList(BaseModel):
    object: Literal["list"] = "list"
    data: list[JobEvent]
    has_more: bool


class JobCheckpoint(BaseModel):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    step_number: int
    metrics: dict[str, float]


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]
