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


class Method(BaseModel):
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: SupervisedMethod | None = None
    dpo: dict[str, Any] | None = None
    reinforcement: dict[str, Any] | None = None


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


class FineTuningJob(BaseModel):
    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: JobError
    fine_tuned_model: str | None
    finished_at: int | None
    hyperparameters: dict[str, Any] | None
    model: str
    organization_id: str
    result_files: list[str]
    seed: int
    status: str
    trained_tokens: int | None
    training_file: str
    validation_file: str | None
    estimated_finish: int | None
    integrations: list[dict[str, Any]]
    metadata: dict[str, str] | None
    method: dict[str, Any]
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
