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
    ("dpo", {"method": {"type": "dpo"}}, "method.type", "Fine-tuning method 'dpo' is not supported yet"),
    ("too much metadata", {"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "at most 16 pairs"),
    ("negative seed", {"seed": -1}, "seed", "seed"),
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
