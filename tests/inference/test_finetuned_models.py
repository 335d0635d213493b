"""The guide's last step: chat with the `ft:` model (and its checkpoints) right after the job succeeds."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
from sqlalchemy import select

from openft.models.tokenizer import build_byte_tokenizer
from openft.store.tables import FineTunedModelRow, JobRow
from tests.inference.conftest import FIXED_ANSWER, QUESTIONS, Trained

UNSEEN = ["Where is the nearest bakery?", "Explain gravity to a child."]


def _ask(trained: Trained, model: str, question: str, **kwargs: Any) -> Any:
    client = trained.server.client()
    messages = [{"role": "user", "content": question}]
    return client.chat.completions.create(
        model=model, messages=messages, temperature=0, max_tokens=40, **kwargs
    )


@pytest.mark.slow
def test_a_model_fine_tuned_on_a_fixed_answer_returns_it(trained: Trained) -> None:
    for question in [QUESTIONS[0], QUESTIONS[5], *UNSEEN]:
        completion = _ask(trained, trained.full_model, question)
        choice = completion.choices[0]
        assert choice.message.content == FIXED_ANSWER and choice.finish_reason == "stop"
        assert completion.model == trained.full_model
    # The end-of-turn token stops generation and is not counted: usage is the answer's own tokens.
    tokens = build_byte_tokenizer(2048).encode(FIXED_ANSWER, add_special_tokens=False)
    assert completion.usage.completion_tokens == len(tokens)


@pytest.mark.slow
def test_streaming_a_fine_tuned_model(trained: Trained) -> None:
    chunks = list(
        _ask(trained, trained.full_model, UNSEEN[0], stream=True, stream_options={"include_usage": True})
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == FIXED_ANSWER
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == len(FIXED_ANSWER)


@pytest.mark.slow
def test_checkpoints_are_models_too(trained: Trained) -> None:
    full = _ask(trained, trained.full_checkpoint, QUESTIONS[1])
    assert full.model == trained.full_checkpoint and full.choices[0].finish_reason in ("stop", "length")
    # Each LoRA epoch checkpoint is its own adapter on the same base: their probabilities differ.
    replies = [_ask(trained, name, QUESTIONS[1], logprobs=True).choices[0] for name in trained.adapters]
    first_logprobs = {round(r.logprobs.content[0].logprob, 4) for r in replies}
    assert len(first_logprobs) == 3
    streamed = _ask(trained, trained.adapters[1], QUESTIONS[1], stream=True)
    assert (
        "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == replies[1].message.content
    )


@pytest.mark.slow
def test_a_deleted_model_is_404_at_once(trained: Trained) -> None:
    client = trained.server.client()
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(trained.full_job))
    doomed = next(c for c in checkpoints if c.step_number == 10).fine_tuned_model_checkpoint
    assert _ask(trained, doomed, "Hi").choices  # served (and now loaded)
    client.models.delete(doomed)
    with pytest.raises(openai.NotFoundError) as caught:
        _ask(trained, doomed, "Hi")
    assert (
        caught.value.body["message"]
        == f"The model `{doomed}` does not exist or you do not have access to it."
    )
    assert caught.value.body["code"] == "model_not_found"


@pytest.mark.slow
def test_a_model_whose_job_is_still_running_is_404_not_ready(trained: Trained) -> None:
    server, running_id = trained.server, "ftjob-inferencetestrunning0000"
    with server.ctx.db.session() as session:
        done = session.scalar(select(FineTunedModelRow).where(FineTunedModelRow.name == trained.full_model))
        assert done is not None
        job = session.scalar(select(JobRow).where(JobRow.id == done.job_id))
        assert job is not None
        # A job that is part way through: its first checkpoint is registered, the job is running.
        running = JobRow(
            id=running_id,
            project_id=job.project_id,
            model=job.model,
            training_file=job.training_file,
            hyperparameters_json=job.hyperparameters_json,
            method_type=job.method_type,
            seed=1,
            integrations_json="[]",
            status="running",
            model_short_id="Run12345",
            created_at=int(time.time()),
        )
        session.add(running)
        checkpoint = "ft:openft-tiny:personal::Ckpt1234:ckpt-step-5"
        session.add(
            FineTunedModelRow(
                name=checkpoint,
                project_id=job.project_id,
                job_id=running_id,
                base_model="openft-tiny",
                path=done.path,
                created_at=int(time.time()),
            )
        )
    for name in (checkpoint, "ft:openft-tiny:personal::Run12345"):
        with pytest.raises(openai.NotFoundError) as caught:
            _ask(trained, name, "Hi")
        body = caught.value.body
        assert body["code"] == "model_not_ready" and body["param"] == "model"
        assert (
            body["message"].startswith(f"The model `{name}` is not ready yet")
            and running_id in body["message"]
        )
