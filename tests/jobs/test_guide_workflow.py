"""The fine-tuning guide's workflow through the official SDK, on the built-in tiny model, end to end."""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING

import openai
import pytest

from tests.jobs.conftest import event_messages, synthetic_files, wait_for_event, wait_for_job
from tests.jobs.webhook_receiver import WebhookReceiver

if TYPE_CHECKING:
    from tests.conftest import LiveServer

CSV_HEADER = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"
MODEL_NAME = re.compile(r"^ft:openft-tiny:personal:guide:[0-9A-Za-z]{8}$")


def test_upload_train_watch_and_continue(job_server: LiveServer) -> None:
    client = job_server.client()
    receiver = WebhookReceiver().start()
    endpoint = client.webhooks.create(
        event_types=["fine_tuning.job.succeeded"], name="done", url=receiver.url
    )
    training_file, validation_file = synthetic_files(client, n_train=20, n_valid=10)

    created = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=training_file,
        validation_file=validation_file,
        suffix="guide",
        hyperparameters={"n_epochs": 2, "batch_size": 4},
        metadata={"team": "search"},
    )
    assert created.id.startswith("ftjob-")
    assert created.object == "fine_tuning.job"
    assert created.status == "validating_files"
    assert created.hyperparameters.n_epochs == 2
    assert created.hyperparameters.learning_rate_multiplier == "auto"
    assert created.error.code is None and created.error.message is None and created.error.param is None
    assert created.fine_tuned_model is None and created.finished_at is None and created.trained_tokens is None
    assert created.result_files == []
    assert created.model == "openft-tiny"
    assert created.training_file == training_file and created.validation_file == validation_file
    assert created.metadata == {"team": "search"}
    assert isinstance(created.seed, int)

    job = wait_for_job(client, created.id)
    assert job.status == "succeeded", job.error
    # "auto" became numbers, in both places it appears.
    assert job.hyperparameters.model_dump() == {
        "batch_size": 4,
        "learning_rate_multiplier": 1.0,
        "n_epochs": 2,
    }
    assert job.method is not None and job.method.supervised is not None
    assert job.method.supervised.hyperparameters.model_dump() == job.hyperparameters.model_dump()
    assert job.fine_tuned_model is not None and MODEL_NAME.match(job.fine_tuned_model)
    assert job.trained_tokens is not None and job.trained_tokens > 0
    assert job.finished_at is not None and job.finished_at >= job.created_at
    assert job.estimated_finish is None

    # The user is told: a signed `fine_tuning.job.succeeded` webhook.
    request = receiver.wait_for(1)[0]
    receiver.stop()
    announced = client.webhooks.unwrap(request.body, request.headers, secret=endpoint.signing_secret)
    assert announced.type == "fine_tuning.job.succeeded" and announced.data.id == job.id

    # Events, oldest first, with OpenAI's texts; then openft's evaluation on the validation file.
    evaluation = wait_for_event(client, job.id, "Evaluation on 10 validation examples: exact match: base ")
    messages = event_messages(client, job.id)
    assert messages[:4] == [
        f"Created fine-tuning job: {job.id}",
        f"Validating training file: {training_file} and validation file: {validation_file}",
        "Files validated, moving job to queued state",
        "Fine-tuning job started",
    ]
    assert messages[-3:] == [
        f"New fine-tuned model created: {job.fine_tuned_model}",
        "The job has successfully completed",
        evaluation,
    ]
    # The synthetic data mixes examples with and without a system prompt: the lint warns, never blocks.
    assert any("system message" in m for m in event_messages(client, job.id, level="warn"))
    steps = [int(m.split("/")[0].removeprefix("Step ")) for m in messages if m.startswith("Step ")]
    total_steps = 2 * 5  # 2 epochs of ceil(20 / 4) steps
    assert steps == list(range(1, total_steps + 1))
    metrics_events = [
        e for e in client.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"
    ]
    last = metrics_events[0]  # newest first
    assert last.data is not None
    assert {"step", "total_steps", "train_loss", "train_mean_token_accuracy", "full_valid_loss"} <= set(
        last.data
    )
    assert last.data["step"] == total_steps and last.data["total_steps"] == total_steps
    # From the second step on, each step's event says how fast training goes, and until the last how
    # long it has left.
    assert last.data["tokens_per_s"] > 0 and "tokens/s" in last.message and "left" not in last.message
    assert "tokens/s, about " in metrics_events[1].message and " left" in metrics_events[1].message

    # One checkpoint per epoch, newest first; the last is named as the final model.
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    assert [c.step_number for c in checkpoints] == [10, 5]
    assert checkpoints[0].fine_tuned_model_checkpoint == job.fine_tuned_model
    earlier = checkpoints[1].fine_tuned_model_checkpoint
    assert re.match(r"^ft:openft-tiny:personal:guide:[0-9A-Za-z]{8}:ckpt-step-5$", earlier)
    assert earlier.split(":")[4] != job.fine_tuned_model.split(":")[4]  # its own 8-char id
    assert all(c.id.startswith("ftckpt_") and c.fine_tuning_job_id == job.id for c in checkpoints)
    assert checkpoints[0].metrics.step == 10 and checkpoints[0].metrics.train_loss is not None

    # The result file: base64 of the CSV, one row per step; the loss fell.
    assert len(job.result_files) == 1
    result = client.files.retrieve(job.result_files[0])
    assert result.purpose == "fine-tune-results"
    rows = base64.b64decode(client.files.content(result.id).read()).decode().splitlines()
    assert rows[0] == CSV_HEADER
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, total_steps + 1))
    losses = [float(r.split(",")[1]) for r in rows[1:]]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3

    # Models: base models, the final model and its checkpoint.
    model_ids = [m.id for m in client.models.list()]
    assert "openft-tiny" in model_ids and job.fine_tuned_model in model_ids and earlier in model_ids
    assert client.models.retrieve(job.fine_tuned_model).owned_by == "personal"

    # Listing with a metadata filter.
    assert [j.id for j in client.fine_tuning.jobs.list(metadata={"team": "search"})] == [job.id]
    assert list(client.fine_tuning.jobs.list(metadata={"team": "other"})) == []

    # Fine-tune the fine-tuned model: it starts from the adapter or weights of the first job.
    follow_up = client.fine_tuning.jobs.create(
        model=job.fine_tuned_model, training_file=training_file, hyperparameters={"n_epochs": 1}
    )
    assert follow_up.model == job.fine_tuned_model
    follow_up = wait_for_job(client, follow_up.id)
    assert follow_up.status == "succeeded", follow_up.error
    assert follow_up.fine_tuned_model is not None
    assert follow_up.fine_tuned_model.startswith("ft:openft-tiny:personal::")

    # Deleting a checkpoint model; a base model cannot be deleted.
    deleted = client.models.delete(earlier)
    assert deleted.id == earlier and deleted.deleted is True
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(earlier)
    with pytest.raises(openai.BadRequestError):
        client.models.delete("openft-tiny")
    # Cancelling a finished job is a 400, not a 409 the SDK would retry.
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.cancel(job.id)
