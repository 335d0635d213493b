"""The worker's loop keeps running jobs whatever one pass of it meets."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from openft.services import job_runs
from openft.services.context import ServiceContext
from openft.settings import Settings
from openft.worker.loop import Worker


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
