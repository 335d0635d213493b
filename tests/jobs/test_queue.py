"""The shared queue: each job runs exactly once across workers; a dead worker's job resumes elsewhere."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from openft.services.context import ServiceContext
from openft.services.job_runs import claim_job
from openft.settings import Settings
from openft.store.tables import JobRow, ProjectRow
from tests.conftest import TEST_DATABASE_URL, drop_database, new_database
from tests.jobs.conftest import diagnosis, event_messages, start_job_server, synthetic_files, wait_for_job

if TYPE_CHECKING:
    from tests.conftest import ServerFactory

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(TEST_DATABASE_URL is None, reason="set OPENFT_TEST_DATABASE_URL"),
    ),
]


def _add_queued_jobs(ctx: ServiceContext, n_jobs: int) -> set[str]:
    ids = {f"ftjob-{secrets.token_hex(8)}" for _ in range(n_jobs)}
    with ctx.db.session() as session:
        session.add(ProjectRow(id="proj_queue", name="queue", created_at=0))
        session.flush()
        for job_id in sorted(ids):
            session.add(
                JobRow(
                    id=job_id,
                    project_id="proj_queue",
                    model="openft-tiny",
                    training_file="file-x",
                    hyperparameters_json="{}",
                    method_type="supervised",
                    seed=0,
                    integrations_json="[]",
                    status="queued",
                    model_short_id="abcdefgh",
                    created_at=0,
                    n_attempts=0,
                )
            )
    return ids


def _claim_all(settings: Settings, out_path: str) -> None:
    """A worker process that claims jobs until none is left, writing each id it got."""
    ctx = ServiceContext.open(settings)
    with open(out_path, "w") as out:
        while (job_id := claim_job(ctx, f"w{os.getpid()}", "queued")) is not None:
            out.write(job_id + "\n")
            out.flush()
            time.sleep(0.005)  # a little work, so the two workers interleave


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_worker_processes_claim_each_job_exactly_once(backend: str, tmp_path: Path) -> None:
    database_url = new_database(tmp_path) if backend == "postgresql" else None
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    try:
        ctx = ServiceContext.open(settings)
        expected = _add_queued_jobs(ctx, 10)
        ctx.close()
        spawn = multiprocessing.get_context("spawn")
        outputs = [str(tmp_path / f"claims{i}.txt") for i in range(2)]
        workers = [spawn.Process(target=_claim_all, args=(settings, out)) for out in outputs]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
            assert worker.exitcode == 0
        claims = [Path(out).read_text().split() for out in outputs]
        every_claim = claims[0] + claims[1]
        assert sorted(every_claim) == sorted(expected)  # all claimed, none twice
    finally:
        drop_database(database_url)


def _start_worker(data_dir: Path, database_url: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENFT_DATA_DIR": str(data_dir)}
    if database_url:
        env["OPENFT_DATABASE_URL"] = database_url
    command = [
        sys.executable,
        "-m",
        "openft.cli.main",
        "worker",
        "--heartbeat-s",
        "0.5",
        "--stale-after-s",
        "3",
    ]
    with (data_dir / f"worker-{time.monotonic_ns()}.log").open("wb") as log:  # read if the test fails
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_a_killed_worker_s_job_resumes_on_another_worker(
    server_factory: ServerFactory, tiny_model_dir: Path
) -> None:
    server = start_job_server(server_factory, tiny_model_dir)
    server.stop()
    server = server_factory(data_dir=server.data_dir)  # the same data, now with no in-process worker
    client = server.client()
    training_file, _ = synthetic_files(client, n_train=20, n_valid=4)
    first = _start_worker(server.data_dir, server.settings.database_url)
    second = None
    try:
        job_id = client.fine_tuning.jobs.create(
            model="openft-tiny", training_file=training_file, hyperparameters={"n_epochs": 4, "batch_size": 2}
        ).id
        deadline = time.monotonic() + 120
        while not any(m.startswith("Checkpoint created") for m in event_messages(client, job_id)):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no checkpoint before the deadline (worker exit code {first.poll()})\n"
                    + diagnosis(client, [job_id], server.data_dir)
                )
            time.sleep(0.2)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

        second = _start_worker(server.data_dir, server.settings.database_url)
        job = wait_for_job(client, job_id, timeout_s=180, diagnose=server.data_dir)
        assert job.status == "succeeded", f"{job.error}\n{diagnosis(client, [job_id], server.data_dir)}"
        messages = event_messages(client, job_id)
        assert any("stopped responding" in m for m in event_messages(client, job_id, level="warn"))
        assert any(m.startswith("Fine-tuning job resumed from step-") for m in messages)
        steps = {int(m.split("/")[0].removeprefix("Step ")) for m in messages if m.startswith("Step ")}
        assert steps == set(range(1, 4 * 10 + 1))
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=30)


def test_a_job_can_train_under_torchrun_with_two_processes(
    server_factory: ServerFactory, tiny_model_dir: Path
) -> None:
    server = start_job_server(server_factory, tiny_model_dir, train_processes=2)
    client = server.client()
    training_file, _ = synthetic_files(client, n_train=12, n_valid=2)
    job = client.fine_tuning.jobs.create(
        model="openft-tiny", training_file=training_file, hyperparameters={"n_epochs": 1, "batch_size": 4}
    )
    job = wait_for_job(client, job.id, timeout_s=240)
    assert job.status == "succeeded", job.error
    assert any("2 processes" in m for m in event_messages(client, job.id))
    assert job.fine_tuned_model in [m.id for m in client.models.list()]
