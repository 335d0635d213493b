"""Runs of an eval: create (every check that can be made up front), list, retrieve, cancel, delete, and
their output items. Execution happens in the background: see eval_exec.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from openft import ids
from openft.errors import InvalidRequest, NotFound
from openft.evals.items import ItemsError, Row, parse_jsonl, row_from, schema_problem
from openft.graders.criteria import templates_of
from openft.graders.templates import (
    TemplateError,
    check_namespaces,
    check_renders,
    lookup,
    references,
    render,
)
from openft.inference.grammar import response_format_grammar
from openft.schemas.evals import (
    CompletionsDataSource,
    CreateEvalRunRequest,
    EvalApiError,
    EvalRun,
    FileIdSource,
    JsonlDataSource,
    PerModelUsage,
    PerTestingCriteriaResult,
    ResultCounts,
    RunSource,
    TemplateInput,
)
from openft.services import evals as eval_service
from openft.services.context import Project, ServiceContext, now
from openft.services.files import get_file_row
from openft.services.inference import resolve_model
from openft.services.jobs import validate_metadata
from openft.store.tables import EvalRunRow

ACTIVE_STATUSES = ("queued", "in_progress")
MAX_RUN_ITEMS = 10_000
# Sampling defaults where the request leaves them out (seed 42 as OpenAI's samples show).
DEFAULT_SAMPLING = {"temperature": 1.0, "top_p": 1.0, "max_completion_tokens": 256, "seed": 42}
SAMPLE_FIELDS = ("output_text", "output_json", "model", "finish_reason")
MESSAGE_ROLES = ("system", "developer", "user", "assistant")
DataSource = CompletionsDataSource | JsonlDataSource


def parse_data_source(raw: dict[str, Any]) -> DataSource:
    kind = raw.get("type")
    model: type[BaseModel]
    if kind == "completions":
        model = CompletionsDataSource
    elif kind == "jsonl":
        model = JsonlDataSource
    else:
        raise InvalidRequest(
            f"openft does not support run data_source of type {kind!r}; supported: 'completions' "
            "(sample a model served here) and 'jsonl' (items that already hold their sample).",
            param="data_source.type",
        )
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = _param(first["loc"])
        raise InvalidRequest(f"Invalid value for '{param}': {first['msg']}.", param=param) from None
    assert isinstance(parsed, CompletionsDataSource | JsonlDataSource)
    return parsed


# The tagged unions of a data source: pydantic puts the tag it chose after the field's name.
_UNION_TAGS = {"source": ("file_content", "file_id"), "input_messages": ("template", "item_reference")}


def _param(loc: Sequence[int | str]) -> str:
    """`data_source.source.content[0].item` from pydantic's location (without its union tags; a field
    named as a tag, such as `input_messages.template.template`, stays)."""
    param = "data_source"
    for index, part in enumerate(loc):
        union = loc[index - 1] if index > 0 else None
        if isinstance(part, int):
            param += f"[{part}]"
        elif not (isinstance(union, str) and part in _UNION_TAGS.get(union, ())):
            param += f".{part}"
    return param


def load_rows(ctx: ServiceContext, project: Project, source: RunSource) -> list[Row]:
    if not isinstance(source, FileIdSource):
        return [
            row_from(r.model_dump(exclude_none=True), f"data_source.source.content[{i}]")
            for i, r in enumerate(source.content)
        ]
    file_row = get_file_row(ctx, project, source.id, param="data_source.source.id")
    data = b"".join(ctx.files.iter_bytes(file_row.blob_name))
    try:
        return parse_jsonl(data.splitlines(), MAX_RUN_ITEMS)
    except ItemsError as exc:
        raise InvalidRequest(f"File {source.id} {exc}", param="data_source.source.id") from None


def _row_param(row: Row, source: RunSource) -> str:
    if isinstance(source, FileIdSource):
        return "data_source.source.id"
    return row.where + ".item"


def create_run(ctx: ServiceContext, project: Project, eval_id: str, request: CreateEvalRunRequest) -> EvalRun:
    validate_metadata(request.metadata)
    with ctx.db.session() as session:
        eval_row = eval_service.get_eval_row(session, project, eval_id)
        criteria = json.loads(eval_row.testing_criteria_json)
        item_schema = json.loads(eval_row.data_source_config_json)["schema"]["properties"]["item"]
    source = parse_data_source(request.data_source)
    if isinstance(source, CompletionsDataSource):
        _require_completions_fields(source)  # the rows' checks render input_messages
    rows = load_rows(ctx, project, source.source)
    for row in rows:
        _check_row(row, source, criteria, item_schema)
    stored: dict[str, Any] = source.model_dump(mode="json", exclude_none=True)
    if isinstance(source, CompletionsDataSource):
        stored["sampling_params"] = _check_completions(ctx, project, source)
    run = EvalRunRow(
        id=ids.new_eval_run_id(),
        eval_id=eval_id,
        project_id=project.id,
        name=request.name or (source.model if isinstance(source, CompletionsDataSource) else None) or "jsonl",
        model=source.model if isinstance(source, CompletionsDataSource) else None,
        status="queued",
        data_source_json=json.dumps(stored),
        metadata_json=json.dumps(request.metadata) if request.metadata is not None else None,
        n_total=0,
        n_errored=0,
        n_failed=0,
        n_passed=0,
        criteria_counts_json=json.dumps({c["name"]: [0, 0] for c in criteria}),
        usage_json="{}",
        created_at=now(),
        heartbeat_at=time.time(),
    )
    with ctx.db.session() as session:
        session.add(run)
    return to_run(run)


def _require_completions_fields(source: CompletionsDataSource) -> None:
    if source.input_messages is None:
        raise InvalidRequest(
            "A 'completions' data source needs input_messages (a template of chat messages).",
            param="data_source.input_messages",
        )
    if not source.model:
        raise InvalidRequest(
            "A 'completions' data source needs the model to sample.", param="data_source.model"
        )


def _check_completions(
    ctx: ServiceContext, project: Project, source: CompletionsDataSource
) -> dict[str, Any]:
    assert source.model is not None  # _require_completions_fields
    try:
        resolve_model(ctx, project, source.model)
    except NotFound as exc:
        raise NotFound(exc.message, param="data_source.model", code=exc.code) from None
    params = source.sampling_params
    if params is not None:
        for name in ("tools", "reasoning_effort"):
            if getattr(params, name) is not None:
                raise InvalidRequest(
                    f"openft does not support sampling_params.{name} in eval runs.",
                    param=f"data_source.sampling_params.{name}",
                )
    given = params.model_dump(exclude_none=True, include=set(DEFAULT_SAMPLING)) if params else {}
    sampling: dict[str, Any] = {**DEFAULT_SAMPLING, **given}
    if params is not None and response_format_grammar(
        params.response_format, param="data_source.sampling_params.response_format"
    ):
        sampling["response_format"] = params.response_format  # the answers follow it, as in chat
    return sampling


def _check_row(row: Row, source: DataSource, criteria: list[dict[str, Any]], item_schema: Any) -> None:
    """Everything about one row that can fail before any model runs: a 400 naming the row and field."""
    param = _row_param(row, source.source)
    problem = schema_problem(row.item, item_schema) if isinstance(item_schema, dict) else None
    if problem:
        raise InvalidRequest(
            f"{row.where}: the item does not match the eval's item_schema: {problem}.", param=param
        )
    try:
        if isinstance(source, CompletionsDataSource):
            render_messages(source, row.item)
        for criterion in criteria:
            for template in templates_of(criterion):
                _check_criterion_template(template, row, source)
    except TemplateError as exc:
        raise InvalidRequest(f"{row.where}: {exc.message}", param=param) from None


def _check_criterion_template(template: str, row: Row, source: DataSource) -> None:
    check_renders(template, {"item": row.item}, only="item")
    if isinstance(source, JsonlDataSource):
        check_renders(template, {"item": row.item, "sample": row.sample}, only="sample")
        return
    for path in _sample_paths(template):
        if path.split(".", 2)[1] not in SAMPLE_FIELDS:
            raise TemplateError(
                f"{{{{{path}}}}}: a completions run's sample offers "
                f"{', '.join('sample.' + f for f in SAMPLE_FIELDS)}.",
                path,
            )


def _sample_paths(template: str) -> list[str]:
    return [p for p in references(template) if p.startswith("sample.")]


def render_messages(source: CompletionsDataSource, item: dict[str, Any]) -> list[dict[str, str]]:
    """The chat messages for one item: the template rendered with it, or the item's own messages."""
    messages = source.input_messages
    if isinstance(messages, TemplateInput):
        out = []
        for message in messages.template:
            content = message.content
            if isinstance(content, dict):
                if content.get("type") not in ("input_text", "output_text") or "text" not in content:
                    raise TemplateError(
                        "openft supports text message content only (input_text, output_text)."
                    )
                content = str(content["text"])
            check_namespaces(content)
            if _sample_paths(content):
                raise TemplateError(
                    "input_messages cannot reference {{sample.*}}: the sample does not exist yet."
                )
            out.append({"role": message.role, "content": render(content, {"item": item})})
        return out
    assert messages is not None
    value = lookup({"item": item}, messages.item_reference)
    if not isinstance(value, list) or not all(
        isinstance(m, dict) and m.get("role") in MESSAGE_ROLES and isinstance(m.get("content"), str)
        for m in value
    ):
        raise TemplateError(
            f"`{messages.item_reference}` must be a list of {{role, content}} messages "
            f"(roles: {', '.join(MESSAGE_ROLES)})."
        )
    return [{"role": m["role"], "content": m["content"]} for m in value]


def to_run(row: EvalRunRow) -> EvalRun:
    counts: dict[str, list[int]] = json.loads(row.criteria_counts_json)
    usage: dict[str, list[int]] = json.loads(row.usage_json)
    return EvalRun(
        id=row.id,
        eval_id=row.eval_id,
        name=row.name,
        model=row.model,
        status=row.status,
        created_at=row.created_at,
        data_source=json.loads(row.data_source_json),
        error=EvalApiError(code=row.error_code, message=row.error_message or "") if row.error_code else None,
        metadata=json.loads(row.metadata_json) if row.metadata_json else {},
        result_counts=ResultCounts(
            total=row.n_total, errored=row.n_errored, failed=row.n_failed, passed=row.n_passed
        ),
        per_model_usage=[
            PerModelUsage(
                model_name=name,
                invocation_count=n,
                prompt_tokens=prompt,
                completion_tokens=completion,
                total_tokens=prompt + completion,
                cached_tokens=0,
            )
            for name, (n, prompt, completion) in usage.items()
        ],
        per_testing_criteria_results=[
            PerTestingCriteriaResult(testing_criteria=name, passed=p, failed=f)
            for name, (p, f) in counts.items()
        ],
        report_url=None,
    )
