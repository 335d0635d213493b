"""The worker's spare recipe process: a job runs in it, a new one replaces it, it dies with the worker,
and a spare that died before its job only means the job starts a fresh process."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import psutil
import pytest
from openai import OpenAI

from openft.train.environment import jemalloc_library
from openft.worker.loop import Worker
from tests.conftest import LiveServer, ServerFactory
from tests.jobs.conftest import start_job_server, synthetic_files
from tests.jobs.test_server_restart import ServeProcess


@pytest.fixture
def server(server_factory: ServerFactory, tiny_model_dir: Path) -> LiveServer:
    """A server without its own worker: the test drives one with run_once."""
    server = start_job_server(server_factory, tiny_model_dir)
    server.stop()
    server.run_worker = False
    return server.start()


def _run_job(server: LiveServer, worker: Worker) -> str:
    client = server.client()
    training_file, _ = synthetic_files(client, n_train=12, n_valid=2)
    job = client.fine_tuning.jobs.create(
        model="openft-tiny", training_file=training_file, hyperparameters={"n_epochs": 1, "batch_size": 4}
    )
    deadline = time.monotonic() + 240
    while (status := client.fine_tuning.jobs.retrieve(job.id).status) not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"job still {status}"
        worker.run_once()
    _assert_allocator_as_set(client, job.id)
    return status


def _assert_allocator_as_set(client: OpenAI, job_id: str) -> None:
    """Spare or fresh, the recipe process runs on jemalloc where the system has it (its start message
    says so), as train_allocator "auto" asks."""
    events = client.fine_tuning.jobs.list_events(job_id, limit=100).data
    start = next(e.message for e in events if e.message.startswith("Training openft-tiny"))
    assert ("jemalloc allocator" in start) == (jemalloc_library() is not None), start


def _wait_gone(pid: int, timeout_s: float = 15) -> bool:
    try:
        psutil.Process(pid).wait(timeout=timeout_s)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return False
    return True


def test_a_job_runs_in_the_spare_and_a_new_spare_replaces_it(server: LiveServer) -> None:
    worker = Worker(server.ctx)
    try:
        worker.run_once()  # nothing queued: starts the spare
        first = worker.spare.pid if worker.spare else None
        assert first is not None and psutil.Process(first).is_running()
        assert _run_job(server, worker) == "succeeded"
        assert _wait_gone(first, timeout_s=1), "the spare should have run the job and exited"
        worker.run_once()
        second = worker.spare.pid if worker.spare else None
        assert second is not None and second != first and psutil.Process(second).is_running()
    finally:
        worker.close()
    assert _wait_gone(second)


def test_a_spare_that_died_before_its_job_does_not_fail_the_job(server: LiveServer) -> None:
    worker = Worker(server.ctx)
    try:
        worker.run_once()
        spare = worker.spare.pid if worker.spare else None
        assert spare is not None
        os.kill(spare, signal.SIGKILL)
        assert _wait_gone(spare)
        assert _run_job(server, worker) == "succeeded"  # in a fresh process
        assert worker.spare is not None and worker.spare.pid is None  # no restart right after a crash
    finally:
        worker.close()


def test_killing_the_server_kills_its_spare(tmp_path: Path, tiny_model_dir: Path) -> None:
    shutil.copytree(tiny_model_dir, tmp_path / "models" / tiny_model_dir.name)
    serve = ServeProcess(tmp_path).start()
    try:
        assert serve.process is not None
        server = psutil.Process(serve.process.pid)
        deadline = time.monotonic() + 30
        while not (spares := [p for p in server.children() if "--spare" in p.cmdline()]):
            assert time.monotonic() < deadline, "no spare recipe process started"
            time.sleep(0.1)
        serve.kill()
        assert _wait_gone(spares[0].pid), "the spare outlived its server"
    finally:
        serve.terminate()
