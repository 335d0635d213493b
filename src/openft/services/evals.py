"""Evals (the Evals API): a `custom` data source config and `string_check`/`text_similarity` criteria.

The runs of an eval live in eval_runs.py (create, list, cancel, output items) and eval_exec.py (the
background execution).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from openft import ids
from openft.errors import InvalidRequest, no_such_object
from openft.graders.criteria import GraderConfigError, normalize_criterion
from openft.schemas.evals import (
    CreateEvalRequest,
    CustomDataSourceConfig,
    DeletedEval,
    Eval,
    EvalList,
    UpdateEvalRequest,
)
from openft.services.context import Project, ServiceContext, now
from openft.services.graders import require_embeddings
from openft.services.jobs import validate_metadata
from openft.services.pages import seq_page
from openft.store.tables import EvalOutputItemRow, EvalRow, EvalRunRow

MAX_LIST_LIMIT = 100
# What `{{sample.*}}` offers when openft samples the model itself (a `completions` run).
SAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "output_text": {"type": "string"},
        "finish_reason": {"type": "string"},
    },
    "required": ["model", "output_text"],
}


def create_eval(ctx: ServiceContext, project: Project, request: CreateEvalRequest) -> Eval:
    validate_metadata(request.metadata)
    config = _data_source_config(request.data_source_config)
    criteria = _testing_criteria(request.testing_criteria)
    row = EvalRow(
        id=ids.new_eval_id(),
        project_id=project.id,
        name=_valid_name(request.name) if request.name is not None else "",
        data_source_config_json=json.dumps(config),
        testing_criteria_json=json.dumps(criteria),
        metadata_json=json.dumps(request.metadata) if request.metadata is not None else None,
        created_at=now(),
    )
    with ctx.db.session() as session:
        session.add(row)
    return to_eval(row)


def _valid_name(name: str) -> str:
    if len(name) > 256:
        raise InvalidRequest("name may be at most 256 characters.", param="name")
    return name


def _data_source_config(raw: dict[str, Any]) -> dict[str, Any]:
    kind = raw.get("type")
    if kind != "custom":
        raise InvalidRequest(
            f"openft does not support data_source_config of type {kind!r}: only 'custom' (with an "
            "item_schema) is supported; stored completions and logs do not exist here.",
            param="data_source_config.type",
        )
    item_schema = raw.get("item_schema")
    if not isinstance(item_schema, dict):
        raise InvalidRequest(
            "Missing required parameter: 'data_source_config.item_schema' (a JSON schema object).",
            param="data_source_config.item_schema",
        )
    include_sample = raw.get("include_sample_schema", False)
    if not isinstance(include_sample, bool):
        raise InvalidRequest(
            "data_source_config.include_sample_schema must be a boolean.",
            param="data_source_config.include_sample_schema",
        )
    properties: dict[str, Any] = {"item": item_schema}
    if include_sample:
        properties["sample"] = SAMPLE_SCHEMA
    return {
        "type": "custom",
        "schema": {"type": "object", "properties": properties, "required": list(properties)},
    }


def _testing_criteria(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not raw:
        raise InvalidRequest("testing_criteria must hold at least one grader.", param="testing_criteria")
    criteria = []
    for i, criterion in enumerate(raw):
        try:
            criteria.append(normalize_criterion(criterion))
        except GraderConfigError as exc:
            param = f"testing_criteria[{i}]" + (f".{exc.field}" if exc.field else "")
            raise InvalidRequest(f"Invalid testing_criteria[{i}]: {exc.message}", param=param) from None
        require_embeddings(criteria[-1], field=f"testing_criteria[{i}]")
    names = [c["name"] for c in criteria]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise InvalidRequest(
            f"Two testing criteria are named {duplicate!r}; give each a name of its own, so that the "
            "run's per-criterion results can tell them apart.",
            param="testing_criteria",
        )
    return criteria


def to_eval(row: EvalRow) -> Eval:
    return Eval(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        metadata=json.loads(row.metadata_json) if row.metadata_json else {},
        data_source_config=CustomDataSourceConfig.model_validate(json.loads(row.data_source_config_json)),
        testing_criteria=json.loads(row.testing_criteria_json),
    )


def get_eval_row(session: Session, project: Project, eval_id: str, param: str = "eval_id") -> EvalRow:
    row = session.scalar(select(EvalRow).where(EvalRow.id == eval_id, EvalRow.project_id == project.id))
    if row is None:
        raise no_such_object("Eval", eval_id, param)
    return row


def retrieve_eval(ctx: ServiceContext, project: Project, eval_id: str) -> Eval:
    with ctx.db.session() as session:
        return to_eval(get_eval_row(session, project, eval_id))


def list_evals(
    ctx: ServiceContext,
    project: Project,
    *,
    after: str | None,
    limit: int,
    order: Literal["asc", "desc"],
    order_by: str,
) -> EvalList:
    if order_by != "created_at":
        raise InvalidRequest("openft lists evals by created_at only.", param="order_by")
    check_limit(limit)
    query = select(EvalRow).where(EvalRow.project_id == project.id)
    with ctx.db.session() as session:
        cursor = get_eval_row(session, project, after, "after").seq if after else None
        rows, has_more = seq_page(session, query, EvalRow, after_seq=cursor, order=order, limit=limit)
        data = [to_eval(r) for r in rows]
    return EvalList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=has_more,
    )


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}.", param="limit")


def update_eval(ctx: ServiceContext, project: Project, eval_id: str, request: UpdateEvalRequest) -> Eval:
    validate_metadata(request.metadata)
    with ctx.db.session() as session:
        row = get_eval_row(session, project, eval_id)
        if request.name is not None:
            row.name = _valid_name(request.name)
        if request.metadata is not None:
            row.metadata_json = json.dumps(request.metadata)
        return to_eval(row)


def delete_eval(ctx: ServiceContext, project: Project, eval_id: str) -> tuple[DeletedEval, list[str]]:
    """Deletes the eval with its runs and their output items; also returns the run ids (to stop them)."""
    with ctx.db.session() as session:
        row = get_eval_row(session, project, eval_id)
        runs = list(session.scalars(select(EvalRunRow).where(EvalRunRow.eval_id == row.id)))
        for run in runs:
            delete_run_rows(session, run)
        session.delete(row)
    return DeletedEval(eval_id=eval_id, deleted=True), [run.id for run in runs]


def delete_run_rows(session: Session, run: EvalRunRow) -> None:
    for item in session.scalars(select(EvalOutputItemRow).where(EvalOutputItemRow.run_id == run.id)):
        session.delete(item)
    session.flush()
    session.delete(run)
    session.flush()
