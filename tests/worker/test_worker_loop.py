"""The worker keeps running jobs whatever one pass of its loop, or one recipe process, does."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from openft.services import job_runs
from openft.services.context import ServiceContext
from openft.settings import Settings
from openft.worker import loop, runner
from openft.worker.loop import Worker
from tests.jobs.conftest import start_job_server, synthetic_files, wait_for_job

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.fine_tuning import FineTuningJob

    from tests.conftest import ServerFactory


def test_a_failed_start_up_recovery_is_retried_and_the_loop_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread is the only one that runs jobs: an error in its first step (a database busy for a
    moment, say) must not end it, or every job would stay queued while the API answers."""
    ctx = ServiceContext.open(Settings(data_dir=tmp_path, train_spare_process=False))
    calls: list[str] = []

    def busy_at_first(_ctx: ServiceContext, host: str) -> int:
        calls.append(host)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return 0

    monkeypatch.setattr(job_runs, "expire_claims_of_dead_local_workers", busy_at_first)
    worker = Worker(ctx, poll_interval_s=0.01)
    passes = threading.Semaphore(0)

    def one_pass() -> bool:
        passes.release()
        return False

    monkeypatch.setattr(worker, "run_once", one_pass)
    thread = worker.start_in_thread()
    try:
        assert passes.acquire(timeout=10) and passes.acquire(timeout=10)  # it keeps looking for work
    finally:
        worker.stop()
        thread.join(timeout=10)
        ctx.close()
    assert len(calls) == 2  # failed once, succeeded on the next pass, then never again


def test_a_recipe_that_reports_nothing_is_stopped_and_the_queue_moves_on(
    server_factory: ServerFactory, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hung recipe (here: a process that prints nothing and sleeps) holds the worker only until
    train_stall_timeout_s; its job fails saying so, and the next job trains normally."""
    _first_recipe_is(monkeypatch, "import sys, time; print('stuck', file=sys.stderr); time.sleep(600)")
    server = start_job_server(
        server_factory, tiny_model_dir, train_stall_timeout_s=1.0, train_spare_process=False
    )
    client = server.client()
    hung, after = _two_jobs(client)

    failed = wait_for_job(client, hung.id, timeout_s=60, diagnose=server.data_dir)
    assert failed.status == "failed" and failed.error.code == "training_stalled"
    assert failed.error.message.startswith("Training reported nothing for ")
    assert "Last error output: stuck." in failed.error.message
    # A real recipe is silent for its first seconds (imports, model load): off for the next job.
    server.settings.train_stall_timeout_s = 0
    assert wait_for_job(client, after.id, timeout_s=120, diagnose=server.data_dir).status == "succeeded"


def test_a_recipe_killed_after_ignoring_a_cancel_leaves_the_job_cancelled(
    server_factory: ServerFactory, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recipe that does not stop within the grace time after a cancel is killed; the job stays
    cancelled (no failure, no error event) and the worker takes the next job."""
    _first_recipe_is(monkeypatch, "import time; time.sleep(600)")  # never reads its control file
    real_runner = runner.JobRunner
    monkeypatch.setattr(loop, "JobRunner", lambda *a, **k: real_runner(*a, kill_grace_s=0.5, **k))
    server = start_job_server(
        server_factory, tiny_model_dir, train_stall_timeout_s=0, train_spare_process=False
    )
    client = server.client()
    deaf, after = _two_jobs(client)
    deadline = time.monotonic() + 60
    while client.fine_tuning.jobs.retrieve(deaf.id).status != "running":
        assert time.monotonic() < deadline, "the first job never started"
        time.sleep(0.1)
    client.fine_tuning.jobs.cancel(deaf.id)

    # The next job runs only once the worker has let the deaf recipe go.
    assert wait_for_job(client, after.id, timeout_s=120, diagnose=server.data_dir).status == "succeeded"
    cancelled = client.fine_tuning.jobs.retrieve(deaf.id)
    assert cancelled.status == "cancelled" and cancelled.error.code is None
    levels = [event.level for event in client.fine_tuning.jobs.list_events(deaf.id, limit=100)]
    assert "error" not in levels


def _first_recipe_is(monkeypatch: pytest.MonkeyPatch, python_code: str) -> None:
    """The first job's recipe process runs `python_code` instead; later jobs run the real recipe."""
    real_command = runner.training_command
    replaced: list[Path] = []

    def first_one_replaced(spec_path: Path, n_processes: int) -> list[str]:
        if not replaced:
            replaced.append(spec_path)
            return [sys.executable, "-c", python_code]
        return real_command(spec_path, n_processes)

    monkeypatch.setattr(runner, "training_command", first_one_replaced)


def _two_jobs(client: OpenAI) -> tuple[FineTuningJob, FineTuningJob]:
    training_file, _ = synthetic_files(client, n_train=10, n_valid=2)
    hparams = {"n_epochs": 1, "batch_size": 5}
    first, second = (
        client.fine_tuning.jobs.create(
            model="openft-tiny", training_file=training_file, hyperparameters=hparams
        )
        for _ in range(2)
    )
    return first, second
