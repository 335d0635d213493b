"""The Evals API (the SDK's `client.evals`): evals, runs and output items, field for field with OpenAI.

Requests keep `data_source_config`, `testing_criteria` and `data_source` loose (plain objects) so that
the service can answer an unsupported type with a 400 that names it; the data source models below are
what the service validates a run's `data_source` with.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EVAL_RUN_STATUSES = ("queued", "in_progress", "completed", "failed", "canceled")
OUTPUT_ITEM_STATUSES = ("pass", "fail")


class CreateEvalRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data_source_config: dict[str, Any]
    testing_criteria: list[dict[str, Any]]
    name: str | None = None
    metadata: dict[str, str] | None = None


class UpdateEvalRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    metadata: dict[str, str] | None = None


class CustomDataSourceConfig(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    type: Literal["custom"] = "custom"
    schema_: dict[str, Any] = Field(alias="schema")


class Eval(BaseModel):
    object: Literal["eval"] = "eval"
    id: str
    name: str
    created_at: int
    metadata: dict[str, str]
    data_source_config: CustomDataSourceConfig
    # string_check: {type, name, input, reference, operation};
    # text_similarity: {type, name, input, reference, evaluation_metric, pass_threshold}.
    testing_criteria: list[dict[str, Any]]


class EvalList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Eval]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedEval(BaseModel):
    object: Literal["eval.deleted"] = "eval.deleted"
    deleted: bool
    eval_id: str


# --- runs: the data source a run is created with ---


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceRow(BaseModel):
    item: dict[str, Any]
    sample: dict[str, Any] | None = None


class FileContentSource(_Strict):
    type: Literal["file_content"]
    content: list[SourceRow] = Field(min_length=1)


class FileIdSource(_Strict):
    type: Literal["file_id"]
    id: str


RunSource = Annotated[FileContentSource | FileIdSource, Field(discriminator="type")]


class TemplateMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    # A string, or one content part {type: input_text|output_text, text}.
    content: str | dict[str, Any]
    type: Literal["message"] | None = None


class TemplateInput(_Strict):
    type: Literal["template"]
    template: list[TemplateMessage] = Field(min_length=1)


class ItemReferenceInput(_Strict):
    type: Literal["item_reference"]
    item_reference: str


InputMessages = Annotated[TemplateInput | ItemReferenceInput, Field(discriminator="type")]


class RunSamplingParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    # Accepted on the wire, refused by the service when set.
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    reasoning_effort: str | None = None


class CompletionsDataSource(_Strict):
    type: Literal["completions"]
    source: RunSource
    input_messages: InputMessages | None = None
    model: str | None = None
    sampling_params: RunSamplingParams | None = None


class JsonlDataSource(_Strict):
    type: Literal["jsonl"]
    source: RunSource


class CreateEvalRunRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    data_source: dict[str, Any]
    name: str | None = None
    metadata: dict[str, str] | None = None


# --- runs and output items on the wire ---


class EvalApiError(BaseModel):
    code: str
    message: str


class ResultCounts(BaseModel):
    total: int
    errored: int
    failed: int
    passed: int


class PerModelUsage(BaseModel):
    model_name: str
    invocation_count: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int


class PerTestingCriteriaResult(BaseModel):
    testing_criteria: str
    passed: int
    failed: int


class EvalRun(BaseModel):
    object: Literal["eval.run"] = "eval.run"
    id: str
    eval_id: str
    name: str
    model: str | None
    status: str
    created_at: int
    data_source: dict[str, Any]
    error: EvalApiError | None
    metadata: dict[str, str]
    result_counts: ResultCounts
    per_model_usage: list[PerModelUsage]
    per_testing_criteria_results: list[PerTestingCriteriaResult]
    report_url: str | None


class EvalRunList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EvalRun]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedEvalRun(BaseModel):
    object: Literal["eval.run.deleted"] = "eval.run.deleted"
    deleted: bool
    run_id: str


class OutputItemResult(BaseModel):
    name: str
    type: str
    passed: bool
    score: float
    sample: dict[str, Any] | None = None


class SampleMessage(BaseModel):
    role: str
    content: str


class SampleUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int


class OutputItemSample(BaseModel):
    input: list[SampleMessage]
    output: list[SampleMessage]
    model: str | None
    finish_reason: str | None
    usage: SampleUsage | None
    error: EvalApiError | None
    temperature: float | None
    max_completion_tokens: int | None
    top_p: float | None
    seed: int | None


class OutputItem(BaseModel):
    object: Literal["eval.run.output_item"] = "eval.run.output_item"
    id: str
    eval_id: str
    run_id: str
    created_at: int
    status: str  # pass | fail | error
    datasource_item_id: int
    datasource_item: dict[str, Any]
    results: list[OutputItemResult]
    sample: OutputItemSample | None


class OutputItemList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OutputItem]
    first_id: str | None
    last_id: str | None
    has_more: bool
