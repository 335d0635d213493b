"""The worker: validates new jobs' files and runs queued jobs, one at a time, until told to stop."""

from __future__ import annotations

import logging
import os
import socket
import threading

from openft.services import job_runs
from openft.services.context import ServiceContext
from openft.settings import Settings
from openft.worker.job_evaluation import EngineLease, evaluate_finished_job
from openft.worker.runner import JobRunner
from openft.worker.spare import SpareRecipe

log = logging.getLogger("openft.worker")


class Worker:
    def __init__(
        self,
        ctx: ServiceContext,
        *,
        engine_lease: EngineLease | None = None,
        name: str | None = None,
        poll_interval_s: float = 0.5,
        heartbeat_s: float = 2.0,
        stale_after_s: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        self.ctx = ctx
        self.engine_lease = engine_lease  # for job evaluations; None: an engine of their own each time
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.poll_interval_s = poll_interval_s
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.max_attempts = max_attempts
        self.stop_event = threading.Event()
        self._wake_event = threading.Event()
        self.spare = _spare_for(ctx.settings)

    def run_once(self) -> bool:
        """Do one piece of work; False when there was nothing to do."""
        job_runs.recover_stale_jobs(
            self.ctx, stale_after_s=self.stale_after_s, max_attempts=self.max_attempts
        )
        if self.spare is not None:  # here, in the worker's thread: the spare dies with this thread
            self.spare.ensure_started()
        job_id = job_runs.claim_job(self.ctx, self.name, "validating_files")
        if job_id is not None:
            job_runs.validate_job_files(self.ctx, job_id)
            return True
        job_id = job_runs.claim_job(self.ctx, self.name, "queued")
        if job_id is not None:
            JobRunner(self.ctx, job_id, heartbeat_s=self.heartbeat_s, spare=self.spare).run()
            # Only for a succeeded job with a validation file.
            evaluate_finished_job(self.ctx, job_id, engine_lease=self.engine_lease)
            return True
        return False

    def run_forever(self) -> None:
        log.info("worker %s started", self.name)
        dead_claims_expired = False
        try:
            while not self.stop_event.is_set():
                try:
                    if not dead_claims_expired:  # once, but retried like any work if it fails
                        job_runs.expire_claims_of_dead_local_workers(self.ctx, socket.gethostname())
                        dead_claims_expired = True
                    busy = self.run_once()
                except Exception:
                    # A bug in one job, or a database that is busy for a moment, must not stop the queue
                    # (this thread is the only one that runs jobs); a job's heartbeat lapses and it is
                    # recovered.
                    log.exception("worker %s: unexpected error", self.name)
                    busy = False
                if not busy:
                    self._wake_event.wait(self.poll_interval_s)
                    self._wake_event.clear()
        finally:
            self.close()

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name=f"openft-worker-{self.name}", daemon=True)
        thread.start()
        return thread

    def wake(self) -> None:
        """Look for work now instead of at the next poll (a job was just created or resumed)."""
        self._wake_event.set()

    def stop(self) -> None:
        self.stop_event.set()
        self._wake_event.set()

    def close(self) -> None:
        """Stop the spare recipe process, if any (run_forever does this when it ends)."""
        if self.spare is not None:
            self.spare.close()


def _spare_for(settings: Settings) -> SpareRecipe | None:
    if not settings.train_spare_process or settings.train_processes > 1:
        return None  # torchrun starts its own processes
    return SpareRecipe(settings.logs_dir / "spare-recipe.stderr.log", allocator=settings.train_allocator)
