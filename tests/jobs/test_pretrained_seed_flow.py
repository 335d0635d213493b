"""The guide's loop through the official SDK on the packaged pretrained model, smollm2-135m-instruct:
upload, a job, its events and checkpoints, chat with the fine-tuned model and with a checkpoint, then
fine-tune the fine-tuned model again. Kept small (12 short examples, 2 epochs) for CI's 2 cores; the
learning itself is tested in tests/train/test_pretrained_learning.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bench.learning_tasks import routing_split
from tests.jobs.conftest import upload_examples, wait_for_job

if TYPE_CHECKING:
    from tests.conftest import ServerFactory

pytestmark = pytest.mark.slow
NAME = "smollm2-135m-instruct"


def test_the_guides_loop_on_the_pretrained_model(
    server_factory: ServerFactory, smollm2_models_dir: Path
) -> None:
    # The server's data dir shares the converted checkpoint the session fixture made once.
    data_dir = server_factory.root / f"server{len(server_factory.servers)}"
    (data_dir / "models").mkdir(parents=True)
    (data_dir / "models" / "converted").symlink_to(smollm2_models_dir / "converted")
    server = server_factory(run_worker=True)
    client = server.client()
    assert NAME in [m.id for m in client.models.list()]

    train, held_out = routing_split(n_train=12, n_held_out=1, seed=1)
    training_file = upload_examples(client, train)
    job = client.fine_tuning.jobs.create(
        model=NAME, training_file=training_file, suffix="seed", hyperparameters={"n_epochs": 2}
    )
    job = wait_for_job(client, job.id, timeout_s=900, diagnose=data_dir)
    assert job.status == "succeeded", job.error
    assert job.fine_tuned_model is not None and re.fullmatch(
        rf"ft:{NAME}:personal:seed:\w{{8}}", job.fine_tuned_model
    )
    assert job.trained_tokens is not None and job.trained_tokens > 0

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    steps = [e for e in events if e.type == "metrics"]
    assert steps and steps[-1].data is not None and steps[-1].data["step"] == 1  # newest first
    assert events[0].message == "The job has successfully completed"
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    assert len(checkpoints) == 2 and checkpoints[0].fine_tuned_model_checkpoint == job.fine_tuned_model

    # The fine-tuned model and the first epoch's checkpoint answer through the chat template, and stop
    # at its end-of-turn token. After 3 steps the checkpoint may well answer with that token first (an
    # empty answer), so only the final model is held to saying something.
    prompt = held_out[0]["messages"][:-1]
    for model in (job.fine_tuned_model, checkpoints[1].fine_tuned_model_checkpoint):
        answer = client.chat.completions.create(model=model, messages=prompt, max_tokens=16, temperature=0)
        choice = answer.choices[0]
        assert choice.finish_reason == "stop" and choice.message.content is not None, (model, choice)
        assert "<|im_end|>" not in choice.message.content
        if model == job.fine_tuned_model:
            assert choice.message.content.strip(), choice

    # Fine-tune the fine-tuned model again: it trains on from its adapter.
    again = client.fine_tuning.jobs.create(
        model=job.fine_tuned_model, training_file=training_file, hyperparameters={"n_epochs": 1}
    )
    again = wait_for_job(client, again.id, timeout_s=900, diagnose=data_dir)
    assert again.status == "succeeded", again.error
    assert again.fine_tuned_model is not None and again.fine_tuned_model.startswith(f"ft:{NAME}:personal::")
