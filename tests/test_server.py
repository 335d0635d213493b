"""The composition root: a built server serves requests with its own parts, and stopping it releases them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openft.server import Server, build_server
from openft.settings import Settings
from openft.train.synthetic import make_split
from tests.jobs import conftest as jobs_conftest

tiny_model_dir = jobs_conftest.tiny_model_dir
MODEL = "openft-tiny"
# No spare recipe process: these tests run no job, and a spare would import torch in a subprocess.
QUIET = {"train_spare_process": False, "inference_cpu_threads": 1}


def _settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, **QUIET)


@pytest.fixture
def server(tmp_path: Path, database_url: str, tiny_model_dir: Path) -> Iterator[Server]:
    shutil.copytree(tiny_model_dir, tmp_path / "data" / "models" / MODEL)
    built = build_server(_settings(tmp_path / "data", database_url), run_worker=True)
    yield built
    built.context.close()  # idempotent: the lifespan closed it already


def _worker_thread(server: Server) -> threading.Thread | None:
    """The thread running this server's worker (other servers in the process, such as the tests'
    shared one, run workers of the same name: host-pid)."""
    assert server.worker is not None
    run = server.worker.run_forever
    return next((t for t in threading.enumerate() if getattr(t, "_target", None) == run), None)


def test_a_built_server_starts_serves_and_stop_releases_worker_and_engine(server: Server) -> None:
    assert _worker_thread(server) is None, "building starts nothing"
    assert server.engine.current is None

    with TestClient(server.app) as client:
        worker_thread = _worker_thread(server)
        assert worker_thread is not None and worker_thread.is_alive()
        response = client.post(
            "/v1/chat/completions",
            headers={"authorization": "Bearer local"},
            json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        )
        assert response.status_code == 200, response.text
        assert response.json()["object"] == "chat.completion"
        engine = server.engine.current
        assert engine is not None, "the chat request made the server's engine"
        assert engine._thread is not None and engine._thread.is_alive()  # type: ignore[attr-defined]

    assert server.engine.current is None
    assert not engine._thread.is_alive()  # type: ignore[attr-defined]
    assert server.worker is not None and server.worker.stop_event.is_set()
    assert server.webhook_sender.stop_event.is_set()
    worker_thread.join(timeout=30)
    assert not worker_thread.is_alive()


def test_the_routes_wake_the_servers_own_worker_when_a_job_is_created(
    tmp_path: Path, database_url: str
) -> None:
    built = build_server(_settings(tmp_path / "data", database_url), run_worker=True)
    services = built.app.state.services
    assert built.worker is not None and services.wake_worker == built.worker.wake
    # The worker's thread would claim the job and train; count the wakes instead of running it.
    wakes: list[None] = []
    built.app.state.services = dataclasses.replace(services, wake_worker=lambda: wakes.append(None))
    built.worker = None
    with TestClient(built.app) as client:
        headers = {"authorization": "Bearer local"}
        train, _ = make_split(10, 0, seed=0)
        body = "\n".join(json.dumps(example) for example in train).encode()
        upload = client.post(
            "/v1/files", headers=headers, data={"purpose": "fine-tune"}, files={"file": ("train.jsonl", body)}
        )
        assert upload.status_code == 200, upload.text
        job = client.post(
            "/v1/fine_tuning/jobs",
            headers=headers,
            json={"model": MODEL, "training_file": upload.json()["id"]},
        )
        assert job.status_code == 200, job.text
        assert job.json()["status"] == "validating_files"
    assert wakes == [None]


def test_two_servers_in_one_process_do_not_share_an_engine(tmp_path: Path, database_url: str) -> None:
    first = build_server(_settings(tmp_path / "a", database_url), run_worker=False)
    second = build_server(_settings(tmp_path / "b", f"sqlite:///{tmp_path / 'b.db'}"), run_worker=False)
    try:
        assert first.engine.get() is first.engine.get()
        assert first.engine.get() is not second.engine.get()
        assert first.app.state.services.engine() is first.engine.get()
        assert second.app.state.services.engine() is second.engine.get()
    finally:
        for server in (first, second):
            asyncio.run(server.stop())
    assert first.engine.current is None and second.engine.current is None
