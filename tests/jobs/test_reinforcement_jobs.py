"""Reinforcement fine-tuning through the official SDK: a grader in `method.reinforcement`, prompts whose
extra fields the grader reads, and the reward rising on a learnable task; the bad requests and files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import LiveServer, ServerFactory
from tests.jobs.conftest import start_job_server, upload_examples, wait_for_event, wait_for_job

# Learnable by openft-tiny in a few steps: the reward counts one letter in the answer.
GRADER = {
    "type": "python",
    "name": "letters",
    "source": "def grade(sample, item):\n"
    "    return min(1.0, sample['output_text'].count(item['letter']) / 8)\n",
}


def prompts(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"messages": [{"role": "user", "content": f"Say something, number {i}."}], "letter": "a", **extra}
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Any:
    factory = ServerFactory(tmp_path_factory.mktemp("rft"))
    yield start_job_server(factory, tiny_model_dir, inference_cpu_threads=1)
    factory.close()


def test_the_reward_rises_on_a_learnable_task(server: LiveServer) -> None:
    client = server.client()
    job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=upload_examples(client, prompts(16), "prompts.jsonl"),
        validation_file=upload_examples(client, prompts(4), "held-out.jsonl"),
        seed=3,
        method={
            "type": "reinforcement",
            "reinforcement": {
                "grader": GRADER,
                "hyperparameters": {
                    "n_epochs": 3,
                    "batch_size": 4,
                    "learning_rate_multiplier": 30,
                    "compute_multiplier": 2,
                    "reasoning_effort": "low",
                },
            },
        },
    )
    assert job.hyperparameters is None and job.method is not None and job.method.type == "reinforcement"
    done = wait_for_job(client, job.id)
    assert done.status == "succeeded", done.error
    assert done.method is not None and done.method.reinforcement is not None
    echoed = done.method.reinforcement.hyperparameters
    assert echoed is not None and (echoed.compute_multiplier, echoed.eval_interval) == (2, 4)
    metrics = sorted(
        (e.data for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data if e.type == "metrics"),
        key=lambda data: data["step"],  # type: ignore[index]
    )
    first: Any = metrics[0]
    last: Any = metrics[-1]
    assert len(metrics) == 12
    assert first["train_reward_mean"] < 0.2 and last["train_reward_mean"] > 0.6
    assert last["train_kl"] > 0 and last["train_grader_error_rate"] == 0
    assert last["valid_reward_mean"] > 0.6  # greedy answers to held-out prompts
    assert sorted(c.step_number for c in client.fine_tuning.jobs.checkpoints.list(job.id)) == [4, 8, 12]
    answer = client.chat.completions.create(
        model=done.fine_tuned_model or "", messages=[{"role": "user", "content": "Hi"}], max_tokens=8
    )
    assert answer.choices[0].message.content is not None
    # The end-of-job evaluation: both models' greedy answers to the held-out prompts, scored by the
    # job's grader.
    evaluation = wait_for_event(client, job.id, "Evaluation on 4 validation examples: reward: base ")
    base, tuned = (float(x) for x in re.findall(r"base ([0-9.]+) → fine-tuned ([0-9.]+)", evaluation)[0])
    assert tuned > base + 0.5, evaluation
    report: Any = client.get(f"/fine_tuning/jobs/{job.id}/evaluation", cast_to=object)
    rows = report["rows"]
    assert len(rows) == 4 and rows[0]["case"]["item"]["letter"] == "a"
    assert rows[0]["candidate"]["text"].count("a") > rows[0]["baseline"]["text"].count("a")


def test_a_score_model_grader_asks_a_fine_tuned_judge_of_the_project(server: LiveServer) -> None:
    """The judge is one of the project's own ft: models, taught to answer 0.9 whatever it reads: every
    answer of the reinforcement run then earns 0.9 through it (its adapter loaded on its base, the grader's
    messages rendered with its chat template, its answer parsed as the score)."""
    client = server.client()
    judge_lines = [
        {
            "messages": [
                {"role": "user", "content": f"Score this answer from 0 to 1: reply {i}"},
                {"role": "assistant", "content": "0.9"},
            ]
        }
        for i in range(12)
    ]
    judge_job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=upload_examples(client, judge_lines, "judge.jsonl"),
        hyperparameters={"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 3},
        seed=1,
    )
    judge = wait_for_job(client, judge_job.id)
    assert judge.status == "succeeded" and judge.fine_tuned_model, judge.error
    grader = {
        "type": "score_model",
        "name": "judged",
        "model": judge.fine_tuned_model,
        "input": [{"role": "user", "content": "Score this answer from 0 to 1: {{sample.output_text}}"}],
        "range": [0, 1],
    }
    job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=upload_examples(client, prompts(4), "prompts.jsonl"),
        method={
            "type": "reinforcement",
            "reinforcement": {
                "grader": grader,
                "hyperparameters": {"n_epochs": 1, "batch_size": 4, "reasoning_effort": "low"},
            },
        },
    )
    done = wait_for_job(client, job.id)
    assert done.status == "succeeded", done.error
    (metrics,) = [e.data for e in client.fine_tuning.jobs.list_events(job.id).data if e.type == "metrics"]
    data: Any = metrics
    assert data["train_grader_error_rate"] == 0
    assert data["train_reward_mean"] == pytest.approx(0.9)


def test_sampled_answers_follow_the_jobs_response_format(server: LiveServer) -> None:
    """An untrained model writes bytes at random; with a json_schema response_format every sampled answer
    is still JSON of that schema, so a grader reading {{sample.output_json.team}} never fails, and about
    a third of the answers name the right one of three teams."""
    client = server.client()
    response_format = {
        "type": "json_schema",
        "json_schema": {
            "name": "route",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"team": {"type": "string", "enum": ["billing", "tech", "sales"]}},
                "required": ["team"],
                "additionalProperties": False,
            },
        },
    }
    grader = {
        "type": "string_check",
        "name": "team",
        "input": "{{sample.output_json.team}}",
        "reference": "{{item.team}}",
        "operation": "eq",
    }
    job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=upload_examples(client, prompts(8, team="tech"), "routes.jsonl"),
        seed=2,
        method={
            "type": "reinforcement",
            "reinforcement": {
                "grader": grader,
                "response_format": response_format,
                "hyperparameters": {"n_epochs": 1, "batch_size": 8, "compute_multiplier": 2},
            },
        },
    )
    done = wait_for_job(client, job.id)
    assert done.status == "succeeded", done.error
    assert done.method is not None and done.method.reinforcement is not None
    assert done.method.reinforcement.response_format == response_format
    (metrics,) = [e.data for e in client.fine_tuning.jobs.list_events(job.id).data if e.type == "metrics"]
    data: Any = metrics
    assert data["train_grader_error_rate"] == 0  # every answer parsed as the schema's JSON
    assert 0.05 < data["train_reward_mean"] < 0.8


def test_a_line_without_a_field_the_grader_reads_fails_the_job(server: LiveServer) -> None:
    client = server.client()
    lines = prompts(10)
    del lines[6]["letter"]
    reads_letter = {
        "type": "string_check",
        "name": "has the letter",
        "input": "{{sample.output_text}}",
        "reference": "{{item.letter}}",
        "operation": "like",
    }
    job = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=upload_examples(client, lines),
        method={"type": "reinforcement", "reinforcement": {"grader": reads_letter}},
    )
    done = wait_for_job(client, job.id)
    assert done.status == "failed" and done.error.code == "invalid_training_file"
    assert "line 7: the grader reads {{item.letter}}" in (done.error.message or "")


@pytest.mark.parametrize(
    ("method", "param", "words"),
    [
        ({"type": "reinforcement"}, "method.reinforcement.grader", "needs method.reinforcement.grader"),
        (
            {"type": "reinforcement", "reinforcement": {"grader": {**GRADER, "source": "x = 1"}}},
            "method.reinforcement.grader.source",
            "grade(sample, item)",
        ),
        (
            {"type": "reinforcement", "reinforcement": {"grader": {
                "type": "multi", "name": "m", "calculate_output": "j",
                "graders": {"j": {"type": "score_model", "name": "j", "model": "gpt-4o-2024-08-06",
                                  "input": [{"role": "user", "content": "{{sample.output_text}}"}]}}}}},
            "method.reinforcement.grader.graders.j.model",
            "judge model 'gpt-4o-2024-08-06' cannot be used",
        ),
        (
            {"type": "reinforcement", "reinforcement": {"grader": GRADER, "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "r", "strict": True, "schema": {"type": "objekt"}}}}},
            "method.reinforcement.response_format.json_schema.schema",
            "objekt",
        ),
        (
            {"type": "reinforcement",
             "reinforcement": {"grader": GRADER, "hyperparameters": {"reasoning_effort": "max"}}},
            "method.reinforcement.hyperparameters.reasoning_effort",
            "reasoning_effort must be one of",
        ),
    ],
)  # fmt: skip
def test_bad_reinforcement_requests_are_400s(
    server: LiveServer, method: dict[str, Any], param: str, words: str
) -> None:
    client = server.client()
    training = upload_examples(client, prompts(10))
    with pytest.raises(openai.BadRequestError) as caught:
        client.fine_tuning.jobs.create(model="openft-tiny", training_file=training, method=method)  # type: ignore[arg-type]
    body: Any = caught.value.body
    assert body["param"] == param and words in body["message"]
