"""Cancel, pause and resume running jobs; the live event stream; projects never see each other's jobs."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from tests.jobs.conftest import event_messages, synthetic_files, wait_for_job

if TYPE_CHECKING:
    from openai import OpenAI

    from tests.conftest import LiveServer


def _metrics_count(client: OpenAI, job_id: str) -> int:
    return sum(1 for e in client.fine_tuning.jobs.list_events(job_id, limit=1000) if e.type == "metrics")


def _wait_for_steps(client: OpenAI, job_id: str, n_steps: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while _metrics_count(client, job_id) < n_steps:
        assert time.monotonic() < deadline, f"job {job_id} did not reach step {n_steps}"
        time.sleep(0.2)


def _long_job(client: OpenAI) -> str:
    training_file, _ = synthetic_files(client, n_train=20, n_valid=10)
    job = client.fine_tuning.jobs.create(
        model="openft-tiny", training_file=training_file, hyperparameters={"n_epochs": 25, "batch_size": 1}
    )
    return job.id


def _wait_until_quiet(client: OpenAI, job_id: str, quiet_s: float = 3.0, timeout_s: float = 30.0) -> int:
    """Wait until no new step is reported for `quiet_s`; returns the final step count."""
    deadline = time.monotonic() + timeout_s
    count = _metrics_count(client, job_id)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        newer = _metrics_count(client, job_id)
        if newer == count:
            return count
        count = newer
    raise AssertionError(f"job {job_id} kept training after it was stopped")


def test_cancel_stops_training_within_seconds(job_server: LiveServer) -> None:
    client = job_server.client()
    job_id = _long_job(client)
    _wait_for_steps(client, job_id, 3)

    cancelled = client.fine_tuning.jobs.cancel(job_id)
    assert cancelled.status == "cancelled"
    stopped_at = time.monotonic()
    final_steps = _wait_until_quiet(client, job_id, quiet_s=2.0, timeout_s=20.0)
    assert time.monotonic() - stopped_at < 20
    assert final_steps < 25 * 20
    job = client.fine_tuning.jobs.retrieve(job_id)
    assert job.status == "cancelled" and job.fine_tuned_model is None and job.finished_at is not None
    assert "Fine-tuning job cancelled" in event_messages(client, job_id)
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.cancel(job_id)

    # The stream of a finished job replays everything, oldest first, then says it ended.
    with httpx.stream(
        "GET",
        f"{job_server.base_url}/fine_tuning/jobs/{job_id}/events",
        params={"stream": "true"},
        timeout=30,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    blocks = [b for b in body.split("\n\n") if b.strip()]
    events = [json.loads(b.split("data: ", 1)[1]) for b in blocks if b.startswith("id: ")]
    assert events[0]["message"] == f"Created fine-tuning job: {job_id}"
    assert [e["id"] for e in events] == [
        e.id for e in reversed(list(client.fine_tuning.jobs.list_events(job_id, limit=1000)))
    ]
    assert blocks[-1] == 'event: end\ndata: {"status": "cancelled"}'

    # Last-Event-ID resumes after the given event.
    with httpx.stream(
        "GET",
        f"{job_server.base_url}/fine_tuning/jobs/{job_id}/events",
        params={"stream": "true"},
        headers={"last-event-id": events[-2]["id"]},
        timeout=30,
    ) as response:
        replay = [b for b in response.read().decode().split("\n\n") if b.startswith("id: ")]
    assert [json.loads(b.split("data: ", 1)[1])["id"] for b in replay] == [events[-1]["id"]]


def test_pause_then_resume_continues_from_the_checkpoint(job_server: LiveServer) -> None:
    client = job_server.client()
    training_file, _ = synthetic_files(client, n_train=20, n_valid=10)
    job_id = client.fine_tuning.jobs.create(
        model="openft-tiny", training_file=training_file, hyperparameters={"n_epochs": 20, "batch_size": 2}
    ).id
    _wait_for_steps(client, job_id, 4)

    paused = client.fine_tuning.jobs.pause(job_id)
    assert paused.status == "paused"
    steps_before = _wait_until_quiet(client, job_id)
    assert client.fine_tuning.jobs.retrieve(job_id).status == "paused"
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.pause(job_id)

    resumed = client.fine_tuning.jobs.resume(job_id)
    assert resumed.status == "queued"
    job = wait_for_job(client, job_id)
    assert job.status == "succeeded", job.error
    messages = event_messages(client, job_id)
    assert any(m.startswith("Fine-tuning job resumed from step-") for m in messages)
    steps = [int(m.split("/")[0].removeprefix("Step ")) for m in messages if m.startswith("Step ")]
    total = 20 * 10  # long enough that the pause (seen at the next heartbeat) lands mid-run
    # Every step ran, and the resumed run picked up where the pause left off rather than at step 1.
    assert sorted(set(steps)) == list(range(1, total + 1))
    assert steps.count(1) == 1
    assert steps_before < total


def test_projects_never_see_each_others_jobs(job_server: LiveServer) -> None:
    key_a, key_b = job_server.create_key("alpha"), job_server.create_key("beta")
    alpha, beta = job_server.client(api_key=key_a), job_server.client(api_key=key_b)
    training_file, _ = synthetic_files(alpha, n_train=12, n_valid=2)
    job = alpha.fine_tuning.jobs.create(model="openft-tiny", training_file=training_file)

    assert list(beta.fine_tuning.jobs.list()) == []
    for call in (
        lambda: beta.fine_tuning.jobs.retrieve(job.id),
        lambda: beta.fine_tuning.jobs.list_events(job.id),
        lambda: beta.fine_tuning.jobs.checkpoints.list(job.id),
        lambda: beta.fine_tuning.jobs.cancel(job.id),
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        assert caught.value.body == {
            "message": f"No such FineTuningJob object: {job.id}",
            "type": "invalid_request_error",
            "param": "fine_tuning_job_id",
            "code": None,
        }
    with pytest.raises(openai.BadRequestError) as refused:
        beta.fine_tuning.jobs.create(model="openft-tiny", training_file=training_file)
    assert refused.value.param == "training_file"
    assert [j.id for j in alpha.fine_tuning.jobs.list()] == [job.id]
    alpha.fine_tuning.jobs.cancel(job.id)
