"""DPO through the official SDK, as OpenAI's guide writes it: a preference file, `method={"type": "dpo"}`,
events with the reward metrics, checkpoints, chat with the result; and the wrong-format failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.conftest import LiveServer, ServerFactory
from tests.jobs.conftest import start_job_server, upload_examples, wait_for_event, wait_for_job

QUESTIONS = [f"Tell me about item {i}." for i in range(14)]


def pairs(questions: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "input": {"messages": [{"role": "user", "content": q}], "tools": [], "parallel_tool_calls": True},
            "preferred_output": [{"role": "assistant", "content": "Gladly, here it is."}],
            "non_preferred_output": [{"role": "assistant", "content": "No. Go away."}],
        }
        for q in questions
    ]


def chats(questions: list[str]) -> list[dict[str, Any]]:
    return [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "Gladly."}]}
        for q in questions
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Any:
    factory = ServerFactory(tmp_path_factory.mktemp("dpo"))
    yield start_job_server(factory, tiny_model_dir, inference_cpu_threads=1)
    factory.close()


def test_a_dpo_job_as_the_guide_writes_it(server: LiveServer) -> None:
    client = server.client()
    training = upload_examples(client, pairs(QUESTIONS[:10]), "prefs.jsonl")
    validation = upload_examples(client, pairs(QUESTIONS[10:]), "prefs-valid.jsonl")
    job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=training,
        validation_file=validation,
        seed=1,
        method={
            "type": "dpo",
            "dpo": {
                "hyperparameters": {
                    "beta": 0.5,
                    "n_epochs": 3,
                    "batch_size": 5,
                    "learning_rate_multiplier": 4,
                }
            },
        },
    )
    assert job.method is not None and job.method.type == "dpo"
    assert job.hyperparameters is None  # as OpenAI answers for DPO jobs
    assert job.method.dpo is not None and job.method.dpo.hyperparameters is not None
    assert job.method.dpo.hyperparameters.beta == 0.5

    done = wait_for_job(client, job.id)
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model and done.trained_tokens
    metrics = [e for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data if e.type == "metrics"]
    last = max(metrics, key=lambda e: e.data["step"])  # type: ignore[index]
    data: Any = last.data
    assert data["step"] == 6 and data["train_reward_accuracy"] == 1.0
    assert data["full_valid_reward_accuracy"] == 1.0 and data["train_reward_margin"] > 0
    assert data["train_sft_loss"] > 0  # the supervised term ("auto" weight 1), reported apart
    assert "reward accuracy=1.00" in last.message
    checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
    assert sorted(c.step_number for c in checkpoints) == [2, 4, 6]
    # The end-of-job evaluation: the held-out reward accuracy, then base vs fine-tuned on the preferred
    # answers (side by side in the stored report).
    evaluation = wait_for_event(client, job.id, "Evaluation on 4 validation examples: ")
    assert "held-out reward accuracy 1.00" in evaluation
    report: Any = client.get(f"/fine_tuning/jobs/{job.id}/evaluation", cast_to=object)
    assert len(report["rows"]) == 4
    assert report["rows"][0]["case"]["reference"] == "Gladly, here it is."
    answer = client.chat.completions.create(
        model=done.fine_tuned_model, messages=[{"role": "user", "content": "Hello?"}], max_tokens=8
    )
    assert answer.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize(
    ("examples", "method", "words"),
    [
        (
            chats(QUESTIONS[:10]),
            {"type": "dpo"},
            "is in the fine-tune-chat format, but the specified fine-tuning job is not using 'supervised'",
        ),
        (
            pairs(QUESTIONS[:10]),
            {"type": "supervised"},
            "preference format, but the specified fine-tuning job is using method=supervised",
        ),
    ],
)
def test_a_file_of_the_wrong_format_fails_the_job(
    server: LiveServer, examples: list[dict[str, Any]], method: dict[str, Any], words: str
) -> None:
    client = server.client()
    job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=upload_examples(client, examples),
        method=method,  # type: ignore[arg-type]
    )
    done = wait_for_job(client, job.id)
    assert done.status == "failed"
    assert done.error.code == "invalid_training_file" and done.error.param == "training_file"
    assert words in (done.error.message or "")
    assert (done.error.message or "").startswith(
        "The job failed due to an invalid training file. Invalid file format."
    )


@pytest.mark.parametrize(
    ("hyperparameters", "name"),
    [({"beta": 3}, "beta"), ({"sft_weight": -1}, "sft_weight"), ({"sft_weight": "high"}, "sft_weight")],
)
def test_dpo_hyperparameters_are_checked_at_creation(
    server: LiveServer, hyperparameters: dict[str, Any], name: str
) -> None:
    client: OpenAI = server.client()
    training = upload_examples(client, pairs(QUESTIONS[:10]))
    with pytest.raises(openai.BadRequestError) as caught:
        client.fine_tuning.jobs.create(
            model="openft-tiny",
            training_file=training,
            method={"type": "dpo", "dpo": {"hyperparameters": hyperparameters}},
        )
    body: Any = caught.value.body
    assert body["param"] == f"method.dpo.hyperparameters.{name}"
    assert f"{name} must be" in body["message"]


def test_plain_dpo_is_asked_with_sft_weight_zero_and_echoed(server: LiveServer) -> None:
    client: OpenAI = server.client()
    training = upload_examples(client, pairs(QUESTIONS[:10]))
    method: Any = {"type": "dpo", "dpo": {"hyperparameters": {"sft_weight": 0, "n_epochs": 1}}}
    job = client.fine_tuning.jobs.create(model="openft-tiny", training_file=training, method=method)
    assert job.method is not None and job.method.dpo is not None
    echoed: Any = job.method.dpo.hyperparameters
    assert echoed.model_dump()["sft_weight"] == 0
    client.fine_tuning.jobs.cancel(job.id)


def test_dpo_continues_a_supervised_lora_model(server: LiveServer) -> None:
    """Supervised first, then DPO on its ft: model (the usual recipe): the reference is the supervised
    model, so training starts at loss log 2 and the preference is learned on top."""
    client = server.client()
    supervised = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=upload_examples(client, chats(QUESTIONS[:10])),
        seed=2,
        hyperparameters={"n_epochs": 1, "batch_size": 5, "full_finetune": False},
    )
    sft_done = wait_for_job(client, supervised.id)
    assert sft_done.status == "succeeded" and sft_done.fine_tuned_model, sft_done.error
    job = client.fine_tuning.jobs.create(
        model=sft_done.fine_tuned_model,
        training_file=upload_examples(client, pairs(QUESTIONS[:10])),
        seed=2,
        method={
            "type": "dpo",
            "dpo": {"hyperparameters": {"n_epochs": 3, "batch_size": 5, "learning_rate_multiplier": 4}},
        },
    )
    done = wait_for_job(client, job.id)
    assert done.status == "succeeded", done.error
    metrics = sorted(
        (e.data for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data if e.type == "metrics"),
        key=lambda data: data["step"],  # type: ignore[index]
    )
    first: Any = metrics[0]
    last: Any = metrics[-1]
    assert first["train_loss"] == pytest.approx(0.6931, abs=1e-3)
    assert last["train_reward_accuracy"] == 1.0 and last["train_loss"] < first["train_loss"]
    assert done.method is not None and done.method.dpo is not None
    assert done.method.dpo.hyperparameters is not None and done.method.dpo.hyperparameters.beta == 0.1
