"""The Evals API through the official SDK (`client.evals`): a base model and a model fine-tuned on a
fixed answer, graded by string_check and text_similarity, with runs, output items, paging and errors."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from sqlalchemy import select, update

from openft.schemas.evals import CreateEvalRunRequest
from openft.services.context import Project
from openft.services.eval_runs import create_run
from openft.store.tables import EvalRunRow, ProjectRow
from tests.conftest import LiveServer, ServerFactory
from tests.inference.conftest import FIXED_ANSWER, QUESTIONS, TEST_SETTINGS
from tests.jobs import conftest as jobs_conftest
from tests.jobs.conftest import start_job_server, upload_examples, wait_for_job

tiny_model_dir = jobs_conftest.tiny_model_dir

ITEM_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
}
CRITERIA: list[Any] = [
    {
        "type": "string_check",
        "name": "exact answer",
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "operation": "eq",
    },
    {
        "type": "text_similarity",
        "name": "close to the answer",
        "input": "{{ sample.output_text }}",
        "reference": "{{item.answer}}",
        "evaluation_metric": "fuzzy_match",
        "pass_threshold": 0.8,
    },
]
TEMPLATE = {"type": "template", "template": [{"role": "user", "content": "{{item.question}}"}]}
GREEDY = {"temperature": 0.0, "max_completion_tokens": 24, "seed": 1}


@dataclass
class Served:
    server: LiveServer
    client: OpenAI
    fine_tuned: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Served]:
    """A server holding openft-tiny fully fine-tuned to answer FIXED_ANSWER to anything."""
    factory = ServerFactory(tmp_path_factory.mktemp("evals"))
    server = start_job_server(factory, tiny_model_dir, **TEST_SETTINGS)
    client = server.client()
    examples = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": FIXED_ANSWER}]}
        for q in QUESTIONS
    ]
    job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=upload_examples(client, examples),
        seed=0,
        hyperparameters={"n_epochs": 3, "batch_size": 1},
    )
    done = wait_for_job(client, job.id)
    assert done.status == "succeeded" and done.fine_tuned_model, done.error
    yield Served(server, client, done.fine_tuned_model)
    factory.close()


def new_eval(client: OpenAI, criteria: list[Any] | None = None, **extra: Any) -> Any:
    return client.evals.create(
        name=extra.pop("name", "capitals"),
        data_source_config={"type": "custom", "item_schema": ITEM_SCHEMA, "include_sample_schema": True},
        testing_criteria=criteria or CRITERIA,
        **extra,
    )


def upload_items(client: OpenAI, lines: list[Any]) -> str:
    body = "\n".join(json.dumps(line) for line in lines).encode()
    return client.files.create(file=("items.jsonl", body), purpose="evals").id


def completions(model: str, source: dict[str, Any], **extra: Any) -> Any:
    return {
        "type": "completions",
        "source": source,
        "input_messages": TEMPLATE,
        "model": model,
        "sampling_params": GREEDY,
        **extra,
    }


def wait_for_run(client: OpenAI, eval_id: str, run_id: str, timeout_s: float = 120) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.evals.runs.retrieve(run_id, eval_id=eval_id)
        if run.status not in ("queued", "in_progress"):
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run.status}"
        time.sleep(0.1)


def items(n: int) -> list[dict[str, str]]:
    return [{"question": QUESTIONS[i % len(QUESTIONS)], "answer": FIXED_ANSWER} for i in range(n)]


def test_the_fine_tuned_model_passes_where_its_base_fails(served: Served) -> None:
    client = served.client
    evaluation = new_eval(client, metadata={"team": "geo"})
    # Both line shapes: OpenAI's {"item": {...}} and a bare item.
    lines: list[Any] = [{"item": item} for item in items(3)] + items(2)
    file_id = upload_items(client, lines)

    runs = {
        model: client.evals.runs.create(
            evaluation.id,
            name=f"{model} run",
            data_source=completions(model, {"type": "file_id", "id": file_id}),
        )
        for model in (served.fine_tuned, "openft-tiny")
    }
    tuned = wait_for_run(client, evaluation.id, runs[served.fine_tuned].id)
    base = wait_for_run(client, evaluation.id, runs["openft-tiny"].id)

    assert runs[served.fine_tuned].status == "queued" and runs[served.fine_tuned].object == "eval.run"
    assert tuned.status == "completed" and tuned.error is None
    assert tuned.result_counts.model_dump() == {"total": 5, "errored": 0, "failed": 0, "passed": 5}
    assert base.result_counts.model_dump() == {"total": 5, "errored": 0, "failed": 5, "passed": 0}
    assert {r.testing_criteria: (r.passed, r.failed) for r in tuned.per_testing_criteria_results} == {
        "exact answer": (5, 0),
        "close to the answer": (5, 0),
    }
    assert [r.failed for r in base.per_testing_criteria_results] == [5, 5]
    (usage,) = tuned.per_model_usage
    assert (usage.run_model_name, usage.invocation_count) == (served.fine_tuned, 5)
    assert usage.completion_tokens == 5 * len(FIXED_ANSWER.encode())  # the byte tokenizer
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert tuned.model == served.fine_tuned and tuned.name == f"{served.fine_tuned} run"
    assert tuned.data_source.sampling_params.max_completion_tokens == 24  # type: ignore[union-attr]
    assert tuned.report_url is None

    passed = list(client.evals.runs.output_items.list(tuned.id, eval_id=evaluation.id, status="pass"))
    assert [item.datasource_item_id for item in passed] == [0, 1, 2, 3, 4]
    assert not list(client.evals.runs.output_items.list(tuned.id, eval_id=evaluation.id, status="fail"))
    item = client.evals.runs.output_items.retrieve(passed[3].id, eval_id=evaluation.id, run_id=tuned.id)
    assert item.object == "eval.run.output_item" and item.status == "pass" and item.run_id == tuned.id
    expected = [line.get("item", line) for line in lines]
    assert item.datasource_item == expected[3]
    assert [(r.name, r.passed, r.score) for r in item.results] == [
        ("exact answer", True, 1.0),
        ("close to the answer", True, 1.0),
    ]
    sample = item.sample
    assert [(m.role, m.content) for m in sample.input] == [("user", expected[3]["question"])]
    assert [(m.role, m.content) for m in sample.output] == [("assistant", FIXED_ANSWER)]
    assert (sample.model, sample.finish_reason, sample.error) == (served.fine_tuned, "stop", None)
    assert (sample.temperature, sample.max_completion_tokens, sample.top_p, sample.seed) == (0.0, 24, 1.0, 1)
    assert sample.usage.completion_tokens == len(FIXED_ANSWER)

    failed = client.evals.runs.output_items.list(base.id, eval_id=evaluation.id, status="fail", limit=2)
    assert len(failed.data) == 2 and failed.has_more
    assert [r.passed for r in failed.data[0].results] == [False, False]
    assert len(list(client.evals.runs.output_items.list(base.id, eval_id=evaluation.id, limit=2))) == 5

    listed = client.evals.runs.list(evaluation.id)
    assert [r.id for r in listed.data] == [runs[served.fine_tuned].id, runs["openft-tiny"].id]
    assert [r.id for r in client.evals.runs.list(evaluation.id, order="desc", limit=1).data] == [base.id]


def test_a_bad_item_errors_alone(served: Served) -> None:
    """An item whose prompt does not fit the model errors; the run completes with the others graded."""
    client = served.client
    evaluation = new_eval(client)
    content = [{"item": item} for item in items(2)]
    content.insert(1, {"item": {"question": "word " * 3000, "answer": FIXED_ANSWER}})

    run = client.evals.runs.create(
        evaluation.id,
        data_source=completions(served.fine_tuned, {"type": "file_content", "content": content}),
    )
    done = wait_for_run(client, evaluation.id, run.id)

    assert done.status == "completed"
    assert done.result_counts.model_dump() == {"total": 3, "errored": 1, "failed": 0, "passed": 2}
    errored = next(
        i for i in client.evals.runs.output_items.list(run.id, eval_id=evaluation.id) if i.status == "error"
    )
    assert errored.datasource_item_id == 1 and errored.results == []
    assert errored.sample.error.code == "invalid_item" and "context" in errored.sample.error.message


def test_sampling_params_response_format_shapes_every_answer(served: Served) -> None:
    """The base model is untrained: only the grammar makes its answers JSON of the run's schema, so a
    criterion reading {{sample.output_json.city}} grades every item instead of erroring."""
    client = served.client
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}},
        "required": ["city"],
        "additionalProperties": False,
    }
    city = {
        "type": "string_check",
        "name": "city",
        "input": "{{sample.output_json.city}}",
        "reference": "Paris",
        "operation": "eq",
    }
    evaluation = new_eval(client, criteria=[city])
    sampling = {
        **GREEDY,
        "temperature": 1.0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    }
    source = {"type": "file_content", "content": [{"item": item} for item in items(6)]}
    run = client.evals.runs.create(
        evaluation.id,
        data_source=completions("openft-tiny", source, sampling_params=sampling),
    )
    done = wait_for_run(client, evaluation.id, run.id)

    assert done.status == "completed" and done.result_counts.errored == 0, done.result_counts
    for item in client.evals.runs.output_items.list(run.id, eval_id=evaluation.id):
        assert json.loads(item.sample.output[0].content or "")["city"] in ("Paris", "Rome")


def test_a_jsonl_run_grades_the_samples_it_holds(served: Served) -> None:
    client = served.client
    evaluation = new_eval(client)
    content = [
        {"item": {"question": "q", "answer": "Paris"}, "sample": {"output_text": "Paris"}},
        {"item": {"question": "q", "answer": "Paris"}, "sample": {"output_text": "Pari"}},
    ]
    run = client.evals.runs.create(
        evaluation.id, data_source={"type": "jsonl", "source": {"type": "file_content", "content": content}}
    )
    done = wait_for_run(client, evaluation.id, run.id)

    assert done.result_counts.model_dump() == {"total": 2, "errored": 0, "failed": 1, "passed": 1}
    assert done.model is None and done.per_model_usage == []
    second = list(client.evals.runs.output_items.list(run.id, eval_id=evaluation.id))[1]
    # fuzzy_match("Pari", "Paris") = 2·4/9
    assert [(r.passed, round(r.score, 4)) for r in second.results] == [(False, 0.0), (True, 0.8889)]


def test_evals_are_created_listed_updated_and_deleted(served: Served) -> None:
    client = served.client
    created = [new_eval(client, name=f"eval {i}") for i in range(3)]
    first = created[0]

    assert first.object == "eval" and first.id.startswith("eval_") and first.metadata == {}
    assert first.data_source_config.schema_["properties"]["item"] == ITEM_SCHEMA
    assert first.data_source_config.schema_["required"] == ["item", "sample"]
    assert [c.type for c in first.testing_criteria] == ["string_check", "text_similarity"]
    updated = client.evals.update(first.id, name="renamed", metadata={"k": "v"})
    assert (updated.name, updated.metadata) == ("renamed", {"k": "v"})
    assert client.evals.retrieve(first.id).name == "renamed"

    page = client.evals.list(limit=2, order="desc")
    assert page.has_more and [e.id for e in page.data][:1] == [created[2].id]
    ids = [e.id for e in client.evals.list(limit=1)]
    assert ids.index(created[0].id) < ids.index(created[1].id) < ids.index(created[2].id)

    run = client.evals.runs.create(
        first.id,
        data_source=completions(
            "openft-tiny", {"type": "file_content", "content": [{"item": i} for i in items(1)]}
        ),
    )
    deleted = client.evals.delete(first.id)
    assert (deleted.object, deleted.deleted, deleted.eval_id) == ("eval.deleted", True, first.id)
    with pytest.raises(openai.NotFoundError):
        client.evals.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.evals.runs.retrieve(run.id, eval_id=first.id)


def test_runs_are_canceled_and_deleted(served: Served) -> None:
    client = served.client
    evaluation = new_eval(client)
    source = {"type": "file_content", "content": [{"item": item} for item in items(200)]}
    run = client.evals.runs.create(evaluation.id, data_source=completions("openft-tiny", source))

    canceled = client.evals.runs.cancel(run.id, eval_id=evaluation.id)
    assert canceled.status == "canceled"
    time.sleep(0.5)
    after = client.evals.runs.retrieve(run.id, eval_id=evaluation.id)
    assert after.status == "canceled" and after.result_counts.total < 200
    with pytest.raises(openai.BadRequestError, match="can no longer be canceled"):
        client.evals.runs.cancel(run.id, eval_id=evaluation.id)

    deleted = client.evals.runs.delete(run.id, eval_id=evaluation.id)
    assert (deleted.object, deleted.deleted, deleted.run_id) == ("eval.run.deleted", True, run.id)
    with pytest.raises(openai.NotFoundError):
        client.evals.runs.retrieve(run.id, eval_id=evaluation.id)


def error_of(call: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(openai.APIStatusError) as raised:
        call()
    body = raised.value.body
    assert isinstance(body, dict)
    return raised.value.status_code, body


def test_bad_requests_get_openai_errors(served: Served) -> None:
    client = served.client
    status, error = error_of(lambda: client.evals.retrieve("eval_missing"))
    assert (status, error["param"], error["message"]) == (404, "eval_id", "No such Eval object: eval_missing")

    label = {
        "type": "label_model",
        "name": "l",
        "model": "m",
        "input": [],
        "labels": [],
        "passing_labels": [],
    }
    status, error = error_of(lambda: new_eval(client, [label]))
    assert (status, error["param"]) == (400, "testing_criteria[0].input")
    assert "input must be a non-empty list of messages" in error["message"]

    status, error = error_of(
        lambda: client.evals.create(data_source_config={"type": "logs"}, testing_criteria=CRITERIA)
    )
    assert (status, error["param"]) == (400, "data_source_config.type")

    evaluation = new_eval(client)
    file_id = upload_items(client, [{"item": items(1)[0]}, {"item": {"question": "q"}}])
    status, error = error_of(
        lambda: client.evals.runs.create(
            evaluation.id, data_source=completions("openft-tiny", {"type": "file_id", "id": file_id})
        )
    )
    assert (status, error["param"]) == (400, "data_source.source.id")
    assert error["message"].startswith("line 2: the item does not match the eval's item_schema: missing")

    template = {"type": "template", "template": [{"role": "user", "content": "{{item.topic}}"}]}
    status, error = error_of(
        lambda: client.evals.runs.create(
            evaluation.id,
            data_source=completions(
                "openft-tiny",
                {"type": "file_content", "content": [{"item": i} for i in items(1)]},
                input_messages=template,
            ),
        )
    )
    assert (status, error["param"]) == (400, "data_source.source.content[0].item")
    assert "has no field `topic`" in error["message"]

    status, error = error_of(
        lambda: client.evals.runs.create(
            evaluation.id,
            data_source=completions(
                "no-such-model", {"type": "file_content", "content": [{"item": i} for i in items(1)]}
            ),
        )
    )
    assert (status, error["param"], error["code"]) == (404, "data_source.model", "model_not_found")

    status, error = error_of(
        lambda: client.evals.runs.create(
            evaluation.id, data_source=completions("openft-tiny", {"type": "file_id", "id": "file-nope"})
        )
    )
    assert (status, error["param"]) == (404, "data_source.source.id")

    not_jsonl = client.files.create(file=("notes.jsonl", b"question,answer\n"), purpose="evals").id
    status, error = error_of(
        lambda: client.evals.runs.create(
            evaluation.id, data_source=completions("openft-tiny", {"type": "file_id", "id": not_jsonl})
        )
    )
    assert status == 400 and "line 1: not valid JSON" in error["message"]


def test_a_run_interrupted_by_a_restart_finishes_on_the_next_server(
    server_factory: ServerFactory, tiny_model_dir: Path
) -> None:
    server = start_job_server(server_factory, tiny_model_dir, **TEST_SETTINGS)
    client = server.client()
    evaluation = new_eval(client)
    with server.ctx.db.session() as session:
        project_row = session.scalars(select(ProjectRow)).one()
    project = Project(project_row.id, project_row.name)
    # A run left behind by a server that died: queued, with a stale heartbeat, never started here.
    request = CreateEvalRunRequest(
        data_source=completions(
            "openft-tiny", {"type": "file_content", "content": [{"item": i} for i in items(3)]}
        )
    )
    run = create_run(server.ctx, project, evaluation.id, request)
    with server.ctx.db.session() as session:
        session.execute(update(EvalRunRow).where(EvalRunRow.id == run.id).values(heartbeat_at=0.0))

    server.restart()
    done = wait_for_run(server.client(), evaluation.id, run.id)

    assert done.status == "completed" and done.result_counts.total == 3


def test_python_and_model_graders_as_testing_criteria(served: Served) -> None:
    """Every grader type is a criterion: a python grader in its sandbox, and a label_model whose judge
    is the project's own fine-tuned model, answering through the server's engine."""
    client = served.client
    python = {
        "type": "python",
        "name": "says the answer",
        "source": "def grade(sample, item):\n"
        "    return 1.0 if sample['output_text'] == item['answer'] else 0.0\n",
        "pass_threshold": 1.0,
    }
    label = {
        "type": "label_model",
        "name": "judged",
        "model": served.fine_tuned,  # answers FIXED_ANSWER to anything: always the passing label
        # The judge was trained on the questions: asked one, it gives its one answer.
        "input": [{"role": "user", "content": "{{item.question}}"}],
        "labels": [FIXED_ANSWER, "wrong"],
        "passing_labels": [FIXED_ANSWER],
    }
    evaluation = new_eval(client, [python, label])
    assert [c.type for c in evaluation.testing_criteria] == ["python", "label_model"]
    runs = {
        name: client.evals.runs.create(
            evaluation.id,
            name=name,
            data_source=completions(
                model, {"type": "file_content", "content": [{"item": i} for i in items(3)]}
            ),
        )
        for name, model in (("fine-tuned", served.fine_tuned), ("base", "openft-tiny"))
    }
    tuned = wait_for_run(client, evaluation.id, runs["fine-tuned"].id)
    assert tuned.status == "completed", tuned.error
    outputs = list(client.evals.runs.output_items.list(runs["fine-tuned"].id, eval_id=evaluation.id))
    assert tuned.result_counts.passed == 3, [o.results for o in outputs]
    assert [r.passed for r in tuned.per_testing_criteria_results] == [3, 3]
    base = wait_for_run(client, evaluation.id, runs["base"].id)
    assert base.status == "completed", base.error
    by_name = {r.testing_criteria: r for r in base.per_testing_criteria_results}
    assert by_name["says the answer"].passed == 0  # the untrained base does not say it
    assert by_name["judged"].passed == 3  # the judge labels anything with its one answer
