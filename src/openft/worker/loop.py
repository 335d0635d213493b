"""The worker: validates new jobs' files and runs queued jobs, one at a time, until told to stop."""

from __future__ import annotations

import logging
import os
import socket
import threading

from openft.services import job_runs
from openft.services.context import ServiceContext
from openft.worker.runner import JobRunner

log = logging.getLogger("openft.worker")


class Worker:
    def __init__(
        self,
        ctx: ServiceContext,
        *,
        name: str | None = None,
        poll_interval_s: float = 0.5,
        heartbeat_s: float = 2.0,
        stale_after_s: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        self.ctx = ctx
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.poll_interval_s = poll_interval_s
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.max_attempts = max_attempts
        self.stop_event = threading.Event()
        self._wake_event = threading.Event()

    def run_once(self) -> bool:
        """Do one piece of work; False when there was nothing to do."""
        job_runs.recover_stale_jobs(
            self.ctx, stale_after_s=self.stale_after_s, max_attempts=self.max_attempts
        )
        job_id = job_runs.claim_job(self.ctx, self.name, "validating_files")
        if job_id is not None:
            job_runs.validate_job_files(self.ctx, job_id)
            return True
        job_id = job_runs.claim_job(self.ctx, self.name, "queued")
        if job_id is not None:
            JobRunner(self.ctx, job_id, heartbeat_s=self.heartbeat_s).run()
            return True
        return False

    def run_forever(self) -> None:
        log.info("worker %s started", self.name)
        job_runs.expire_claims_of_dead_local_workers(self.ctx, socket.gethostname())
        while not self.stop_event.is_set():
            try:
                busy = self.run_once()
            except Exception:
                # A bug in one job must not stop the queue; the job's heartbeat lapses and it is recovered.
                log.exception("worker %s: unexpected error", self.name)
                busy = False
            if not busy:
                self._wake_event.wait(self.poll_interval_s)
                self._wake_event.clear()

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
