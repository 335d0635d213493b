"""Fixtures for job tests: a server with a worker, the built-in tiny model built once per session."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from openai import OpenAI
from openai.types.fine_tuning import FineTuningJob

from openft.models.builtin import ensure_builtin_model
from openft.train.synthetic import make_split
from tests.jobs.webhook_receiver import ALLOW_LOOPBACK_RECEIVERS

if TYPE_CHECKING:
    from tests.conftest import LiveServer, ServerFactory

TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_builtin_model("openft-tiny", tmp_path_factory.mktemp("models"))


def start_job_server(factory: ServerFactory, tiny_model_dir: Path, **overrides: Any) -> LiveServer:
    """A server with its worker running, and openft-tiny already in its models dir (built once)."""
    data_dir = factory.root / f"server{len(factory.servers)}"
    shutil.copytree(tiny_model_dir, data_dir / "models" / tiny_model_dir.name)
    return factory(run_worker=True, **overrides)


@pytest.fixture
def job_server(server_factory: ServerFactory, tiny_model_dir: Path) -> LiveServer:
    return start_job_server(server_factory, tiny_model_dir, **ALLOW_LOOPBACK_RECEIVERS)


def upload_examples(client: OpenAI, examples: list[dict[str, Any]], name: str = "train.jsonl") -> str:
    body = "\n".join(json.dumps(example) for example in examples).encode()
    return client.files.create(file=(name, body), purpose="fine-tune").id


def synthetic_files(client: OpenAI, n_train: int = 20, n_valid: int = 10, seed: int = 0) -> tuple[str, str]:
    train, valid = make_split(n_train, n_valid, seed=seed)
    return upload_examples(client, train), upload_examples(client, valid, "valid.jsonl")


def wait_for_job(
    client: OpenAI,
    job_id: str,
    statuses: tuple[str, ...] = TERMINAL,
    timeout_s: float = 240,
    diagnose: Path | None = None,
) -> FineTuningJob:
    """The job once it reaches one of `statuses`; on timeout, with `diagnose` (a data dir), the failure
    says what the job and the processes were doing."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        if time.monotonic() > deadline:
            details = f"\n{diagnosis(client, [job_id], diagnose)}" if diagnose is not None else ""
            raise AssertionError(f"job {job_id} still {job.status} after {timeout_s} s{details}")
        time.sleep(0.2)


def diagnosis(client: OpenAI, job_ids: list[str], data_dir: Path) -> str:
    """For a test that timed out: each job's status and newest events, and the tail of every log under
    the data dir (server, worker, recipe processes)."""
    parts = []
    for job_id in job_ids:
        job = client.fine_tuning.jobs.retrieve(job_id)
        events = [e.message for e in client.fine_tuning.jobs.list_events(job_id, limit=8)]
        parts.append(f"{job_id}: {job.status}; newest events: {events}")
    for log in sorted(data_dir.rglob("*.log")):
        parts.append(f"--- {log.relative_to(data_dir)}:\n{log.read_text(errors='replace')[-2000:]}")
    return "\n".join(parts)


def event_messages(client: OpenAI, job_id: str, level: str = "info") -> list[str]:
    """A job's event messages of one level, oldest first."""
    events = reversed(list(client.fine_tuning.jobs.list_events(job_id, limit=100)))
    return [e.message for e in events if e.level == level]


def wait_for_event(
    client: OpenAI, job_id: str, prefix: str, level: str = "info", timeout_s: float = 120
) -> str:
    """The newest event message of `level` that starts with `prefix`, once there is one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [m for m in reversed(event_messages(client, job_id, level=level)) if m.startswith(prefix)]
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"no {prefix!r} event for {job_id}: {event_messages(client, job_id, level=level)}")
