"""What a bad job request gets: a synchronous 400 when it can be known at once, else a failed job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
import pytest

from openft.train.synthetic import make_split
from tests.jobs.conftest import start_job_server, upload_examples, wait_for_job

if TYPE_CHECKING:
    from openai import OpenAI

    from tests.conftest import LiveServer, ServerFactory


@pytest.fixture(scope="module")
def server(module_server_factory: ServerFactory, tiny_model_dir: Path) -> LiveServer:
    return start_job_server(module_server_factory, tiny_model_dir)


@pytest.fixture(scope="module")
def client(server: LiveServer) -> OpenAI:
    return server.client()


@pytest.fixture(scope="module")
def training_file(client: OpenAI) -> str:
    return upload_examples(client, make_split(12, 0)[0])


SYNC_ERRORS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "unknown model",
        {"model": "gpt-9"},
        "model",
        "Model gpt-9 is not available for fine-tuning or does not exist.",
    ),
    (
        "missing file",
        {"training_file": "file-missing"},
        "training_file",
        "invalid training_file: file-missing.",
    ),
    ("n_epochs 0", {"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs", "n_epochs must be"),
    (
        "batch 300",
        {"hyperparameters": {"batch_size": 300}},
        "hyperparameters.batch_size",
        "batch_size must be",
    ),
    (
        "negative multiplier",
        {"hyperparameters": {"learning_rate_multiplier": -1}},
        "hyperparameters.learning_rate_multiplier",
        "learning_rate_multiplier must be",
    ),
    (
        "LoRA and full together",
        {"hyperparameters": {"lora_rank": 8, "full_finetune": True}},
        "hyperparameters.lora_rank",
        "exclude each other",
    ),
    ("unknown hyperparameter", {"hyperparameters": {"warmup": 3}}, "hyperparameters.warmup", "warmup"),
    ("suffix too long", {"suffix": "x" * 65}, "suffix", "suffix"),
    (
        "reinforcement",
        {"method": {"type": "reinforcement"}},
        "method.type",
        "Fine-tuning method 'reinforcement' is not supported yet",
    ),
    ("too much metadata", {"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "at most 16 pairs"),
    ("negative seed", {"seed": -1}, "seed", "seed"),
    (
        "multiplier 1e308",
        {"hyperparameters": {"learning_rate_multiplier": 1e308}},
        "hyperparameters.learning_rate_multiplier",
        'learning_rate_multiplier must be "auto" or a number above 0 and at most 100; got 1e+308',
    ),
    (
        "n_epochs true",
        {"hyperparameters": {"n_epochs": True}},
        "hyperparameters.n_epochs",
        'n_epochs must be "auto" or an integer from 1 to 50; got true',
    ),
    (
        "n_epochs 1.5",
        {"hyperparameters": {"n_epochs": 1.5}},
        "hyperparameters.n_epochs",
        'n_epochs must be "auto" or an integer from 1 to 50; got 1.5',
    ),
    (
        "batch_size as a string",
        {"hyperparameters": {"batch_size": "4"}},
        "hyperparameters.batch_size",
        'batch_size must be "auto" or an integer from 1 to 256; got "4"',
    ),
    (
        "full_finetune yes",
        {"hyperparameters": {"full_finetune": "yes"}},
        "hyperparameters.full_finetune",
        'full_finetune must be true, false or null; got "yes"',
    ),
    (
        "lora_rank true",
        {"hyperparameters": {"lora_rank": True}},
        "hyperparameters.lora_rank",
        "lora_rank must be null or an integer from 1 to 1024; got true",
    ),
    (
        "a bad value in method",
        {"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}}},
        "method.supervised.hyperparameters.n_epochs",
        "n_epochs must be",
    ),
    (
        "hyperparameters that disagree",
        {
            "hyperparameters": {"n_epochs": 2},
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}},
        },
        "hyperparameters",
        "hyperparameters and method.supervised.hyperparameters disagree",
    ),
    (
        "wandb",
        {"integrations": [{"type": "wandb", "wandb": {"project": "p"}}]},
        "integrations",
        "Integrations are not supported on this server",
    ),
    *[
        (f"suffix {shown}", {"suffix": suffix}, "suffix", "suffix may hold only letters, digits, '-' and '_'")
        for shown, suffix in [
            ("NUL", "a\x00b"),
            ("slash", "a/b"),
            ("colon", "a:b"),
            ("question mark", "a?b"),
            ("hash", "a#b"),
            ("space", "a b"),
            ("accent", "caf\u00e9"),
        ]
    ],
]


@pytest.mark.parametrize(("case", "override", "param", "text"), SYNC_ERRORS, ids=[c[0] for c in SYNC_ERRORS])
def test_invalid_requests_answer_400_at_once(
    client: OpenAI, training_file: str, case: str, override: dict[str, Any], param: str, text: str
) -> None:
    arguments: dict[str, Any] = {"model": "openft-tiny", "training_file": training_file, **override}
    with pytest.raises(openai.BadRequestError) as caught:
        client.fine_tuning.jobs.create(**arguments)
    error = caught.value
    assert error.status_code == 400
    assert error.param == param
    assert error.type == "invalid_request_error"
    assert text in error.message
    assert error.response.headers["x-request-id"]


def test_a_file_of_another_purpose_is_refused(client: OpenAI) -> None:
    other = client.files.create(file=("notes.jsonl", b'{"a": 1}\n'), purpose="assistants")
    with pytest.raises(openai.BadRequestError) as caught:
        client.fine_tuning.jobs.create(model="openft-tiny", training_file=other.id)
    assert caught.value.param == "training_file"
    assert "purpose 'assistants'" in caught.value.message


def _failed_job(client: OpenAI, training: str, validation: str | None = None) -> Any:
    created = client.fine_tuning.jobs.create(
        model="openft-tiny", training_file=training, validation_file=validation
    )
    assert created.status == "validating_files"  # bad data never fails the create itself
    job = wait_for_job(client, created.id, timeout_s=60)
    assert job.status == "failed"
    assert job.fine_tuned_model is None and job.trained_tokens is None and job.finished_at is not None
    return job


def test_seven_examples_fail_with_invalid_n_examples(client: OpenAI) -> None:
    job = _failed_job(client, upload_examples(client, make_split(7, 0)[0]))
    assert job.error.code == "invalid_n_examples"
    assert job.error.param == "training_file"
    assert job.error.message == "Training file has 7 example(s), but must have at least 10 examples"


def test_a_bad_line_fails_the_job_naming_line_and_field(client: OpenAI) -> None:
    examples = make_split(12, 0)[0]
    examples[3] = {"messages": [{"content": "no role here"}, {"role": "assistant", "content": "ok"}]}
    job = _failed_job(client, upload_examples(client, examples))
    assert job.error.code == "invalid_training_file"
    assert job.error.param == "training_file"
    assert job.error.message.startswith(
        "The job failed due to an invalid training file. Invalid file format."
    )
    assert "line 4" in job.error.message and "role" in job.error.message
    errors = [e for e in client.fine_tuning.jobs.list_events(job.id) if e.level == "error"]
    assert errors and errors[0].message == job.error.message


def test_a_bad_validation_file_fails_with_invalid_validation_file(client: OpenAI, training_file: str) -> None:
    bad = client.files.create(file=("valid.jsonl", b'{"messages": "not a list"}\n'), purpose="fine-tune")
    job = _failed_job(client, training_file, bad.id)
    assert job.error.code == "invalid_validation_file"
    assert job.error.param == "validation_file"
    assert "line 1" in job.error.message


def test_prompt_completion_data_cannot_train_a_chat_job(client: OpenAI) -> None:
    lines = "\n".join(json.dumps({"prompt": f"q{i}", "completion": f"a{i}"}) for i in range(12))
    legacy = client.files.create(file=("legacy.jsonl", lines.encode()), purpose="fine-tune")
    job = _failed_job(client, legacy.id)
    assert job.error.code == "invalid_training_file"
    assert "method=supervised" in job.error.message


def test_identical_hyperparameters_in_both_places_are_accepted(client: OpenAI, training_file: str) -> None:
    hyperparameters = {"n_epochs": 2, "batch_size": 4}
    job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=training_file,
        hyperparameters=hyperparameters,
        method={"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
        suffix="Ok_suffix-2",
    )
    assert job.user_provided_suffix == "Ok_suffix-2"
    client.fine_tuning.jobs.cancel(job.id)


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN"])
def test_json_infinity_and_nan_are_refused_naming_the_param(
    server: LiveServer, training_file: str, literal: str
) -> None:
    """Python's JSON parser reads these non-standard literals; they must not reach training."""
    body = (
        f'{{"model": "openft-tiny", "training_file": "{training_file}", '
        f'"hyperparameters": {{"learning_rate_multiplier": {literal}}}}}'
    )
    response = server.http().post(
        "fine_tuning/jobs", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "hyperparameters.learning_rate_multiplier"
    assert error["message"].endswith(f"got {literal}.")


@pytest.mark.parametrize("param", ["training_file", "validation_file"])
def test_a_file_that_failed_processing_is_refused_at_create(
    client: OpenAI, training_file: str, param: str
) -> None:
    broken = client.files.create(file=("broken.jsonl", b"not json at all\n"), purpose="fine-tune")
    assert broken.status == "error" and broken.status_details
    files = {"training_file": training_file, param: broken.id}
    with pytest.raises(openai.BadRequestError) as caught:
        client.fine_tuning.jobs.create(model="openft-tiny", **files)
    assert caught.value.param == param
    assert f"File {broken.id} failed processing" in caught.value.message
    assert broken.status_details.rstrip(".") in caught.value.message
