"""The Jobs verbs (services/jobs.py) on a real database, below HTTP: what create_job refuses (with the
`param` a client shows), what it stores, and list, retrieve, cancel, pause and resume."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from openft.errors import InvalidRequest, NotFound
from openft.schemas.jobs import CreateJobRequest
from openft.schemas.webhooks import CreateWebhookEndpointRequest
from openft.services import jobs as job_service
from openft.services import webhooks
from openft.services.context import Project, ServiceContext
from openft.services.job_events import list_events
from openft.store.tables import JobRow, WebhookDeliveryRow
from tests.services.conftest import CHAT_EXAMPLE, upload

GRADER = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}
JSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}


@pytest.fixture
def training_file(ctx: ServiceContext, project: Project) -> str:
    return upload(ctx, project, [CHAT_EXAMPLE] * 3)


def job_request(training_file: str, **fields: Any) -> CreateJobRequest:
    return CreateJobRequest.model_validate({"model": "openft-tiny", "training_file": training_file, **fields})


def refusal(ctx: ServiceContext, project: Project, request: CreateJobRequest) -> InvalidRequest:
    """The 400 create_job answers; no job is stored."""
    with pytest.raises(InvalidRequest) as raised:
        job_service.create_job(ctx, project, request)
    with ctx.db.session() as session:
        assert session.scalars(select(JobRow)).all() == []
    return raised.value


def test_a_created_job_is_stored_validating_with_what_was_asked(
    ctx: ServiceContext, project: Project, training_file: str
) -> None:
    validation_file = upload(ctx, project, [CHAT_EXAMPLE], filename="valid.jsonl")
    request = job_request(
        training_file,
        validation_file=validation_file,
        hyperparameters={"n_epochs": 2, "lora_rank": 8},
        suffix="support-bot_2",
        seed=7,
        metadata={"team": "support"},
    )

    job = job_service.create_job(ctx, project, request)

    assert (job.status, job.model, job.seed, job.user_provided_suffix) == (
        "validating_files",
        "openft-tiny",
        7,
        "support-bot_2",
    )
    assert (job.training_file, job.validation_file, job.organization_id) == (
        training_file,
        validation_file,
        project.id,
    )
    assert job.metadata == {"team": "support"}
    assert job.hyperparameters is not None
    assert (job.hyperparameters.n_epochs, job.hyperparameters.batch_size, job.hyperparameters.lora_rank) == (
        2,
        "auto",
        8,
    )
    assert job.method is not None and job.method.type == "supervised"
    assert job.fine_tuned_model is None and job.result_files == [] and job.integrations == []
    assert job_service.retrieve_job(ctx, project, job.id) == job
    events = list_events(ctx, project, job.id, after=None, limit=10)
    assert [e.message for e in events.data] == [
        f"Validating training file: {training_file} and validation file: {validation_file}",
        f"Created fine-tuning job: {job.id}",
    ]


def test_a_job_without_a_seed_gets_one(ctx: ServiceContext, project: Project, training_file: str) -> None:
    job = job_service.create_job(ctx, project, job_request(training_file))
    assert 0 <= job.seed < 2**31
    assert job_service.retrieve_job(ctx, project, job.id).seed == job.seed


@pytest.mark.parametrize("suffix", ["a", "A-z_09", "x" * 64])
def test_suffixes_of_letters_digits_dash_and_underscore_are_kept(
    ctx: ServiceContext, project: Project, training_file: str, suffix: str
) -> None:
    job = job_service.create_job(ctx, project, job_request(training_file, suffix=suffix))
    assert job.user_provided_suffix == suffix


@pytest.mark.parametrize("suffix", ["with space", "a:b", "v1.2", "a/b", "café", "tab\t"])
def test_a_suffix_that_cannot_be_part_of_a_model_name_is_refused(
    ctx: ServiceContext, project: Project, training_file: str, suffix: str
) -> None:
    error = refusal(ctx, project, job_request(training_file, suffix=suffix))
    assert error.param == "suffix"
    assert "letters, digits, '-' and '_'" in error.message


HYPERPARAMETER_ERRORS: list[tuple[dict[str, Any], str, str]] = [
    ({"hyperparameters": {"n_epochs": "two"}}, "hyperparameters.n_epochs", "n_epochs must be"),
    ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs", "n_epochs must be"),
    ({"hyperparameters": {"n_epochs": 51}}, "hyperparameters.n_epochs", "n_epochs must be"),
    ({"hyperparameters": {"batch_size": True}}, "hyperparameters.batch_size", "batch_size must be"),
    ({"hyperparameters": {"batch_size": 257}}, "hyperparameters.batch_size", "batch_size must be"),
    (
        {"hyperparameters": {"learning_rate_multiplier": 0}},
        "hyperparameters.learning_rate_multiplier",
        "learning_rate_multiplier must be",
    ),
    (
        {"hyperparameters": {"learning_rate_multiplier": "fast"}},
        "hyperparameters.learning_rate_multiplier",
        "learning_rate_multiplier must be",
    ),
    ({"hyperparameters": {"lora_rank": 0}}, "hyperparameters.lora_rank", "lora_rank"),
    ({"hyperparameters": {"lora_rank": 2.5}}, "hyperparameters.lora_rank", "lora_rank"),
    ({"hyperparameters": {"max_seq_length": 1}}, "hyperparameters.max_seq_length", "max_seq_length"),
    ({"hyperparameters": {"full_finetune": "yes"}}, "hyperparameters.full_finetune", "full_finetune must be"),
    (
        {"hyperparameters": {"lora_rank": 8, "full_finetune": True}},
        "hyperparameters.lora_rank",
        "exclude each other",
    ),
    (
        {"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": -1}}}},
        "method.supervised.hyperparameters.n_epochs",
        "n_epochs must be",
    ),
    (
        {"method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0}}}},
        "method.dpo.hyperparameters.beta",
        "beta must be",
    ),
    (
        {"method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": "strong"}}}},
        "method.dpo.hyperparameters.beta",
        "beta must be",
    ),
    (
        {
            "method": {
                "type": "reinforcement",
                "reinforcement": {"grader": GRADER, "hyperparameters": {"compute_multiplier": 11}},
            }
        },
        "method.reinforcement.hyperparameters.compute_multiplier",
        "compute_multiplier must be",
    ),
    (
        {
            "method": {
                "type": "reinforcement",
                "reinforcement": {"grader": GRADER, "hyperparameters": {"eval_samples": 0}},
            }
        },
        "method.reinforcement.hyperparameters.eval_samples",
        "eval_samples must be",
    ),
    (
        {
            "method": {
                "type": "reinforcement",
                "reinforcement": {"grader": GRADER, "hyperparameters": {"reasoning_effort": "max"}},
            }
        },
        "method.reinforcement.hyperparameters.reasoning_effort",
        "reasoning_effort must be one of",
    ),
    (
        {
            "method": {
                "type": "reinforcement",
                "reinforcement": {"grader": GRADER, "hyperparameters": {"full_finetune": True}},
            }
        },
        "method.reinforcement.hyperparameters.full_finetune",
        "trains a LoRA adapter",
    ),
]


@pytest.mark.parametrize(
    ("fields", "param", "words"), HYPERPARAMETER_ERRORS, ids=[e[1] for e in HYPERPARAMETER_ERRORS]
)
def test_a_bad_hyperparameter_is_refused_naming_it(
    ctx: ServiceContext, project: Project, training_file: str, fields: dict[str, Any], param: str, words: str
) -> None:
    error = refusal(ctx, project, job_request(training_file, **fields))
    assert (error.param, error.code) == (param, None)
    assert error.message.startswith("Invalid hyperparameters: ") and words in error.message


def test_top_level_and_method_hyperparameters_that_disagree_are_refused(
    ctx: ServiceContext, project: Project, training_file: str
) -> None:
    request = job_request(
        training_file,
        hyperparameters={"n_epochs": 2},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}},
    )
    error = refusal(ctx, project, request)
    assert error.param == "hyperparameters" and "disagree" in error.message


def test_top_level_and_method_hyperparameters_that_agree_are_one_request(
    ctx: ServiceContext, project: Project, training_file: str
) -> None:
    same = {"n_epochs": 3, "batch_size": 2}
    request = job_request(
        training_file,
        hyperparameters=same,
        method={"type": "supervised", "supervised": {"hyperparameters": same}},
    )
    job = job_service.create_job(ctx, project, request)
    assert job.hyperparameters is not None
    assert (job.hyperparameters.n_epochs, job.hyperparameters.batch_size) == (3, 2)


@pytest.mark.parametrize(
    "method",
    [
        {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}},
        {"type": "reinforcement", "reinforcement": {"grader": GRADER}},
    ],
    ids=["dpo", "reinforcement"],
)
def test_top_level_hyperparameters_are_refused_for_other_methods(
    ctx: ServiceContext, project: Project, training_file: str, method: dict[str, Any]
) -> None:
    error = refusal(ctx, project, job_request(training_file, hyperparameters={"n_epochs": 1}, method=method))
    assert error.param == "hyperparameters"
    assert f"method.{method['type']}.hyperparameters" in error.message


def test_a_dpo_job_keeps_its_beta_and_answers_no_top_level_hyperparameters(
    ctx: ServiceContext, project: Project, training_file: str
) -> None:
    method = {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.3, "n_epochs": 2}}}
    job = job_service.create_job(ctx, project, job_request(training_file, method=method))
    assert job.hyperparameters is None
    assert job.method is not None and job.method.dpo is not None
    assert (job.method.dpo.hyperparameters.beta, job.method.dpo.hyperparameters.n_epochs) == (0.3, 2)


def test_integrations_are_refused(ctx: ServiceContext, project: Project, training_file: str) -> None:
    request = job_request(training_file, integrations=[{"type": "wandb", "wandb": {"project": "runs"}}])
    error = refusal(ctx, project, request)
    assert error.param == "integrations" and "wandb" in error.message


def test_an_empty_integrations_list_is_no_integration(
    ctx: ServiceContext, project: Project, training_file: str
) -> None:
    job = job_service.create_job(ctx, project, job_request(training_file, integrations=[]))
    assert job.integrations == []


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ({f"k{i}": "v" for i in range(17)}, "at most 16 pairs"),
        ({"k" * 65: "v"}, "too long"),
        ({"k": "v" * 513}, "too long"),
    ],
    ids=["17 pairs", "long key", "long value"],
)
def test_metadata_over_the_limits_is_refused(
    ctx: ServiceContext, project: Project, training_file: str, metadata: dict[str, str], words: str
) -> None:
    error = refusal(ctx, project, job_request(training_file, metadata=metadata))
    assert error.param == "metadata" and words in error.message


def test_an_unknown_base_model_is_refused(ctx: ServiceContext, project: Project, training_file: str) -> None:
    error = refusal(ctx, project, job_request(training_file, model="gpt-9"))
    assert error.param == "model" and "Model gpt-9 is not available for fine-tuning" in error.message


def test_a_fine_tuned_model_of_another_project_is_refused(
    ctx: ServiceContext, project: Project, training_file: str
) -> None:
    error = refusal(ctx, project, job_request(training_file, model="ft:openft-tiny:other::abcd1234"))
    assert error.param == "model"


@pytest.mark.parametrize("param", ["training_file", "validation_file"])
def test_a_file_that_failed_processing_is_refused(
    ctx: ServiceContext, project: Project, training_file: str, param: str
) -> None:
    broken = upload(ctx, project, b'{"messages": []}\nnot json\n', filename="broken.jsonl")
    request = (
        job_request(broken)
        if param == "training_file"
        else job_request(training_file, validation_file=broken)
    )

    error = refusal(ctx, project, request)

    assert error.param == param
    assert error.message.startswith(f"File {broken} failed processing, so it cannot be used as {param}: ")
    assert "line 2" in error.message  # the file's status_details


@pytest.mark.parametrize("param", ["training_file", "validation_file"])
def test_a_file_of_another_purpose_is_refused(
    ctx: ServiceContext, project: Project, training_file: str, param: str
) -> None:
    other = upload(ctx, project, b"bytes", purpose="vision", filename="a.png")
    request = (
        job_request(other) if param == "training_file" else job_request(training_file, validation_file=other)
    )
    error = refusal(ctx, project, request)
    assert error.param == param and "purpose 'vision'" in error.message


def test_a_file_of_another_project_is_no_file(
    ctx: ServiceContext, project: Project, other_project: Project
) -> None:
    theirs = upload(ctx, other_project, [CHAT_EXAMPLE])
    error = refusal(ctx, project, job_request(theirs))
    assert error.param == "training_file"
    assert error.message.startswith(f"invalid training_file: {theirs}. No such file exists in this project")


def test_a_reinforcement_job_needs_a_grader(
    ctx: ServiceContext, project: Project, training_file: str
) -> None:
    error = refusal(ctx, project, job_request(training_file, method={"type": "reinforcement"}))
    assert error.param == "method.reinforcement.grader"


REINFORCEMENT_ERRORS: list[tuple[dict[str, Any], str, str | None]] = [
    ({"grader": {"type": "nope"}}, "method.reinforcement.grader.type", "invalid_grader"),
    ({"grader": {**GRADER, "operation": "near"}}, "method.reinforcement.grader.operation", "invalid_grader"),
    (
        {
            "grader": {
                "type": "label_model",
                "name": "judge",
                "model": "openft-tiny",
                "input": [{"role": "user", "content": "{{sample.output_text}}"}],
                "labels": ["good", "bad"],
                "passing_labels": ["good"],
            }
        },
        "method.reinforcement.grader.type",
        "invalid_grader",
    ),
    (
        {
            "grader": {
                "type": "score_model",
                "name": "judge",
                "model": "no-such-judge",
                "input": [{"role": "user", "content": "Score {{sample.output_text}}"}],
            }
        },
        "method.reinforcement.grader.model",
        "invalid_grader",
    ),
    (
        {"grader": GRADER, "response_format": {"type": "xml"}},
        "method.reinforcement.response_format.type",
        None,
    ),
    (
        {"grader": GRADER, "response_format": {"type": "json_schema"}},
        "method.reinforcement.response_format.json_schema",
        None,
    ),
    (
        {
            "grader": GRADER,
            "response_format": {"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}},
        },
        "method.reinforcement.response_format.json_schema.name",
        None,
    ),
]


@pytest.mark.parametrize(
    ("reinforcement", "param", "code"),
    REINFORCEMENT_ERRORS,
    ids=[f"{i}-{e[1]}" for i, e in enumerate(REINFORCEMENT_ERRORS)],
)
def test_a_bad_reinforcement_grader_or_response_format_is_refused(
    ctx: ServiceContext,
    project: Project,
    training_file: str,
    reinforcement: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    method = {"type": "reinforcement", "reinforcement": reinforcement}
    error = refusal(ctx, project, job_request(training_file, method=method))
    assert (error.param, error.code) == (param, code)


def test_a_reinforcement_job_stores_its_checked_grader_and_response_format(
    ctx: ServiceContext, project: Project, training_file: str
) -> None:
    method = {
        "type": "reinforcement",
        "reinforcement": {
            "grader": GRADER,
            "response_format": JSON_FORMAT,
            "hyperparameters": {"eval_samples": 3, "reasoning_effort": "low"},
        },
    }

    job = job_service.create_job(ctx, project, job_request(training_file, method=method))

    assert job.hyperparameters is None
    assert job.method is not None and job.method.reinforcement is not None
    stored = job_service.retrieve_job(ctx, project, job.id).method
    assert stored is not None and stored.reinforcement is not None
    assert stored.reinforcement.grader == GRADER
    assert stored.reinforcement.response_format == JSON_FORMAT
    hp = stored.reinforcement.hyperparameters
    assert (hp.eval_samples, hp.reasoning_effort, hp.compute_multiplier) == (3, "low", "auto")


def test_a_text_response_format_is_not_stored(
    ctx: ServiceContext, project: Project, training_file: str
) -> None:
    method = {
        "type": "reinforcement",
        "reinforcement": {"grader": GRADER, "response_format": {"type": "text"}},
    }
    job = job_service.create_job(ctx, project, job_request(training_file, method=method))
    with ctx.db.session() as session:
        row = session.scalar(select(JobRow).where(JobRow.id == job.id))
        assert row is not None and row.response_format_json is None
        assert json.loads(row.grader_json or "null") == GRADER


def test_jobs_are_listed_newest_first_in_pages_and_by_metadata(
    ctx: ServiceContext, project: Project, other_project: Project, training_file: str
) -> None:
    first, second, third = (
        job_service.create_job(
            ctx, project, job_request(training_file, metadata={"n": str(n), "team": team})
        ).id
        for n, team in ((1, "a"), (2, "b"), (3, "a"))
    )
    job_service.create_job(ctx, other_project, job_request(upload(ctx, other_project, [CHAT_EXAMPLE])))

    page = job_service.list_jobs(ctx, project, after=None, limit=2, metadata={})
    assert ([j.id for j in page.data], page.has_more) == ([third, second], True)
    rest = job_service.list_jobs(ctx, project, after=second, limit=2, metadata={})
    assert ([j.id for j in rest.data], rest.has_more) == ([first], False)
    team_a = job_service.list_jobs(ctx, project, after=None, limit=10, metadata={"team": "a"})
    assert [j.id for j in team_a.data] == [third, first]
    assert job_service.list_jobs(ctx, project, after=None, limit=10, metadata={"team": "c"}).data == []


@pytest.mark.parametrize("limit", [0, 101])
def test_a_list_limit_out_of_range_is_refused(ctx: ServiceContext, project: Project, limit: int) -> None:
    with pytest.raises(InvalidRequest) as raised:
        job_service.list_jobs(ctx, project, after=None, limit=limit, metadata={})
    assert raised.value.param == "limit"


def test_another_projects_job_cannot_be_seen_or_cancelled(
    ctx: ServiceContext, project: Project, other_project: Project, training_file: str
) -> None:
    job = job_service.create_job(ctx, project, job_request(training_file))
    for verb in (job_service.retrieve_job, job_service.cancel_job):
        with pytest.raises(NotFound) as raised:
            verb(ctx, other_project, job.id)
        assert raised.value.param == "fine_tuning_job_id"
    with pytest.raises(NotFound) as raised:
        job_service.list_jobs(ctx, other_project, after=job.id, limit=10, metadata={})
    assert job_service.retrieve_job(ctx, project, job.id).status == "validating_files"


def test_cancel_finishes_the_job_logs_it_and_queues_the_webhook_event(
    ctx: ServiceContext, project: Project, training_file: str
) -> None:
    endpoint = webhooks.create_endpoint(
        ctx,
        project,
        CreateWebhookEndpointRequest(
            event_types=["fine_tuning.job.cancelled"], name="hooks", url="https://93.184.216.34/in"
        ),
    )
    job = job_service.create_job(ctx, project, job_request(training_file))

    cancelled = job_service.cancel_job(ctx, project, job.id)

    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert job_service.retrieve_job(ctx, project, job.id) == cancelled
    assert (
        list_events(ctx, project, job.id, after=None, limit=1).data[0].message == "Fine-tuning job cancelled"
    )
    with ctx.db.session() as session:
        deliveries = session.scalars(select(WebhookDeliveryRow)).all()
        assert [(d.endpoint_id, d.event_type) for d in deliveries] == [
            (endpoint.id, "fine_tuning.job.cancelled")
        ]
        assert json.loads(deliveries[0].payload)["data"]["id"] == job.id
    with pytest.raises(InvalidRequest) as raised:
        job_service.cancel_job(ctx, project, job.id)
    assert raised.value.param == "fine_tuning_job_id"


def test_pause_and_resume_move_a_queued_job_and_log_it(
    ctx: ServiceContext, project: Project, training_file: str
) -> None:
    job = job_service.create_job(ctx, project, job_request(training_file))
    with pytest.raises(InvalidRequest):  # still validating its files
        job_service.pause_job(ctx, project, job.id)
    with ctx.db.session() as session:
        row = session.scalar(select(JobRow).where(JobRow.id == job.id))
        assert row is not None
        row.status = "queued"

    assert job_service.pause_job(ctx, project, job.id).status == "paused"
    assert job_service.resume_job(ctx, project, job.id).status == "queued"

    messages = [e.message for e in list_events(ctx, project, job.id, after=None, limit=2).data]
    assert messages == ["Fine-tuning job resumed, moving job to queued state", "Fine-tuning job paused"]
