"""Creating an eval run (services/eval_runs.py) on a real database: every check that can be made before
a model runs is a 400 naming the data source field or row at fault; a run that passes is stored queued.
No run is executed here (that is eval_exec.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from openft.errors import InvalidRequest, NotFound, OpenFTError
from openft.schemas.evals import CreateEvalRequest, CreateEvalRunRequest
from openft.services import eval_runs
from openft.services import evals as eval_service
from openft.services.context import Project, ServiceContext
from openft.store.tables import EvalRunRow
from tests.services.conftest import add_model, upload

ITEM_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
}
CRITERION = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}
ITEMS = [{"item": {"question": "2+2?", "answer": "4"}}, {"item": {"question": "3+3?", "answer": "6"}}]
TEMPLATE = {"type": "template", "template": [{"role": "user", "content": "{{item.question}}"}]}
SAMPLED = [{**item, "sample": {"output_text": item["item"]["answer"]}} for item in ITEMS]
MODEL = "ft:openft-tiny:personal::abcd1234"


@pytest.fixture
def eval_id(ctx: ServiceContext, project: Project) -> str:
    request = CreateEvalRequest(
        name="arithmetic",
        data_source_config={"type": "custom", "item_schema": ITEM_SCHEMA, "include_sample_schema": True},
        testing_criteria=[CRITERION],
    )
    return eval_service.create_eval(ctx, project, request).id


def jsonl(content: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "type": "jsonl",
        "source": {"type": "file_content", "content": ITEMS if content is None else content},
    }


def completions(**fields: Any) -> dict[str, Any]:
    source = {"type": "file_content", "content": [{"item": item["item"]} for item in ITEMS]}
    return {"type": "completions", "source": source, "input_messages": TEMPLATE, "model": MODEL, **fields}


def refusal(
    ctx: ServiceContext, project: Project, eval_id: str, data_source: dict[str, Any], **fields: Any
) -> OpenFTError:
    """The error create_run answers; no run is stored."""
    request = CreateEvalRunRequest(data_source=data_source, **fields)
    with pytest.raises(OpenFTError) as raised:
        eval_runs.create_run(ctx, project, eval_id, request)
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(EvalRunRow)) == 0
    return raised.value


def test_a_jsonl_run_is_stored_queued_with_empty_counts(
    ctx: ServiceContext, project: Project, eval_id: str
) -> None:
    request = CreateEvalRunRequest(data_source=jsonl(SAMPLED), metadata={"try": "1"})

    run = eval_runs.create_run(ctx, project, eval_id, request)

    assert (run.eval_id, run.status, run.name, run.model, run.error) == (
        eval_id,
        "queued",
        "jsonl",
        None,
        None,
    )
    assert run.data_source == jsonl(SAMPLED)
    assert run.metadata == {"try": "1"}
    assert run.result_counts.model_dump() == {"total": 0, "errored": 0, "failed": 0, "passed": 0}
    assert [r.model_dump() for r in run.per_testing_criteria_results] == [
        {"testing_criteria": "exact", "passed": 0, "failed": 0}
    ]
    with ctx.db.session() as session:
        stored = session.scalar(select(EvalRunRow).where(EvalRunRow.id == run.id))
        assert stored is not None and eval_runs.to_run(stored) == run


def test_a_completions_run_stores_its_sampling_with_the_defaults(
    ctx: ServiceContext, project: Project, eval_id: str, tmp_path: Path
) -> None:
    add_model(ctx, project, MODEL, tmp_path / "model")
    sampling = {"temperature": 0, "max_completion_tokens": 16}

    run = eval_runs.create_run(
        ctx, project, eval_id, CreateEvalRunRequest(data_source=completions(sampling_params=sampling))
    )

    assert (run.name, run.model, run.status) == (MODEL, MODEL, "queued")
    assert run.data_source["sampling_params"] == {
        "temperature": 0,
        "top_p": 1.0,
        "max_completion_tokens": 16,
        "seed": 42,
    }
    assert run.data_source["input_messages"] == TEMPLATE


def test_a_completions_run_keeps_a_json_response_format(
    ctx: ServiceContext, project: Project, eval_id: str, tmp_path: Path
) -> None:
    add_model(ctx, project, MODEL, tmp_path / "model")
    response_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    data_source = completions(sampling_params={"response_format": response_format})
    run = eval_runs.create_run(
        ctx, project, eval_id, CreateEvalRunRequest(data_source=data_source, name="json")
    )
    assert run.name == "json"
    assert run.data_source["sampling_params"]["response_format"] == response_format


DATA_SOURCE_ERRORS: list[tuple[dict[str, Any], str, str]] = [
    ({"type": "responses", "source": {}}, "data_source.type", "'completions'"),
    ({"source": {}}, "data_source.type", "None"),
    ({"type": "jsonl"}, "data_source.source", "Field required"),
    (
        {"type": "jsonl", "source": {"type": "file_content", "content": []}},
        "data_source.source.content",
        "at least 1",
    ),
    (
        {"type": "jsonl", "source": {"type": "file_content", "content": [{"item": "text"}]}},
        "data_source.source.content[0].item",
        "valid dictionary",
    ),
    ({"type": "jsonl", "source": {"type": "stored_completions"}}, "data_source.source", "does not match"),
    ({**jsonl(), "model": "x"}, "data_source.model", "Extra inputs"),
    (completions(sampling_params={"temperature": 3}), "data_source.sampling_params.temperature", "less than"),
    (
        completions(input_messages={"type": "template", "template": []}),
        "data_source.input_messages.template",
        "at least 1",
    ),
    (
        completions(input_messages={"type": "item_reference"}),
        "data_source.input_messages.item_reference",
        "Field required",
    ),
    (completions(source={"type": "file_id"}), "data_source.source.id", "Field required"),
]


@pytest.mark.parametrize(
    ("data_source", "param", "words"),
    DATA_SOURCE_ERRORS,
    ids=[f"{i}-{e[1]}" for i, e in enumerate(DATA_SOURCE_ERRORS)],
)
def test_a_malformed_data_source_is_refused_naming_the_field(
    ctx: ServiceContext, project: Project, eval_id: str, data_source: dict[str, Any], param: str, words: str
) -> None:
    error = refusal(ctx, project, eval_id, data_source)
    assert isinstance(error, InvalidRequest)
    assert error.param == param and words in error.message


@pytest.mark.parametrize(
    ("rows", "param", "words"),
    [
        (
            [SAMPLED[0], {"item": {"question": "5+5?"}, "sample": {"output_text": "10"}}],
            "data_source.source.content[1].item",
            "missing required property 'answer'",
        ),
        (
            [{"item": {"question": 7, "answer": "7"}, "sample": {"output_text": "7"}}],
            "data_source.source.content[0].item",
            "question",
        ),
    ],
)
def test_an_item_that_does_not_match_the_item_schema_is_refused_naming_its_row(
    ctx: ServiceContext, project: Project, eval_id: str, rows: list[dict[str, Any]], param: str, words: str
) -> None:
    error = refusal(ctx, project, eval_id, jsonl(rows))
    assert error.param == param
    assert "the item does not match the eval's item_schema" in error.message and words in error.message


def test_a_sample_a_criterion_reads_must_be_in_a_jsonl_row(
    ctx: ServiceContext, project: Project, eval_id: str
) -> None:
    rows = [SAMPLED[0], ITEMS[1]]
    error = refusal(ctx, project, eval_id, jsonl(rows))
    assert error.param == "data_source.source.content[1].item"
    assert (
        error.message.startswith("data_source.source.content[1]: ") and "sample.output_text" in error.message
    )


def test_a_file_source_is_checked_line_by_line(ctx: ServiceContext, project: Project, eval_id: str) -> None:
    missing = refusal(
        ctx, project, eval_id, {"type": "jsonl", "source": {"type": "file_id", "id": "file-nothere"}}
    )
    assert (type(missing), missing.param) == (NotFound, "data_source.source.id")

    bad_json = upload(ctx, project, b'{"item": {"question": "a", "answer": "b"}}\n{oops\n', purpose="evals")
    error = refusal(ctx, project, eval_id, {"type": "jsonl", "source": {"type": "file_id", "id": bad_json}})
    assert error.param == "data_source.source.id" and "line 2: not valid JSON" in error.message

    no_answer = upload(ctx, project, [{"item": {"question": "a"}}], purpose="evals")
    error = refusal(ctx, project, eval_id, {"type": "jsonl", "source": {"type": "file_id", "id": no_answer}})
    assert error.param == "data_source.source.id" and error.message.startswith("line 1: ")


COMPLETIONS_ERRORS: list[tuple[dict[str, Any], str, str]] = [
    (completions(input_messages=None), "data_source.input_messages", "needs input_messages"),
    (completions(model=None), "data_source.model", "needs the model"),
    (completions(model="gpt-4o"), "data_source.model", "does not exist"),
    (completions(sampling_params={"tools": []}), "data_source.sampling_params.tools", "tools"),
    (
        completions(sampling_params={"reasoning_effort": "low"}),
        "data_source.sampling_params.reasoning_effort",
        "reasoning_effort",
    ),
    (
        completions(sampling_params={"response_format": {"type": "yaml"}}),
        "data_source.sampling_params.response_format.type",
        "yaml",
    ),
    (
        completions(
            input_messages={
                "type": "template",
                "template": [{"role": "user", "content": "{{sample.output_text}}"}],
            }
        ),
        "data_source.source.content[0].item",
        "cannot reference {{sample.*}}",
    ),
    (
        completions(
            input_messages={"type": "template", "template": [{"role": "user", "content": "{{question}}"}]}
        ),
        "data_source.source.content[0].item",
        "{{question}}",
    ),
    (
        completions(input_messages={"type": "item_reference", "item_reference": "item.question"}),
        "data_source.source.content[0].item",
        "must be a list of {role, content} messages",
    ),
]


@pytest.mark.parametrize(
    ("data_source", "param", "words"),
    COMPLETIONS_ERRORS,
    ids=[f"{i}-{e[1]}" for i, e in enumerate(COMPLETIONS_ERRORS)],
)
def test_a_completions_run_that_cannot_be_sampled_is_refused(
    ctx: ServiceContext,
    project: Project,
    eval_id: str,
    tmp_path: Path,
    data_source: dict[str, Any],
    param: str,
    words: str,
) -> None:
    add_model(ctx, project, MODEL, tmp_path / "model")
    error = refusal(ctx, project, eval_id, data_source)
    assert error.status_code in (400, 404)
    assert error.param == param and words in error.message


def test_a_criterion_may_read_only_the_sample_fields_a_completions_run_offers(
    ctx: ServiceContext, project: Project, tmp_path: Path
) -> None:
    add_model(ctx, project, MODEL, tmp_path / "model")
    criterion = {**CRITERION, "input": "{{sample.output_tokens}}"}
    request = CreateEvalRequest(
        data_source_config={"type": "custom", "item_schema": ITEM_SCHEMA, "include_sample_schema": True},
        testing_criteria=[criterion],
    )
    eval_id = eval_service.create_eval(ctx, project, request).id
    error = refusal(ctx, project, eval_id, completions())
    assert error.param == "data_source.source.content[0].item"
    assert "a completions run's sample offers sample.output_text" in error.message


def test_a_run_of_another_projects_eval_or_with_too_much_metadata_is_refused(
    ctx: ServiceContext, project: Project, other_project: Project, eval_id: str
) -> None:
    missing = refusal(ctx, other_project, eval_id, jsonl())
    assert (type(missing), missing.param) == (NotFound, "eval_id")
    crowded = refusal(ctx, project, eval_id, jsonl(), metadata={f"k{i}": "v" for i in range(17)})
    assert crowded.param == "metadata"
