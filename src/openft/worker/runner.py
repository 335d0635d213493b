"""Runs one job's recipe in a subprocess and relays its JSON-lines reports into the job's record.

The subprocess boundary is what keeps a crash or an out-of-memory kill in training from taking the
server down. A heartbeat thread tells the database this worker is alive and passes a cancel or pause
on to the recipe through its control file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from openft.schemas.jobs import JobStatus
from openft.services import job_reports, job_runs
from openft.services.context import ServiceContext
from openft.train.spec import RunLayout
from openft.worker.pace import RunPace
from openft.worker.public_text import python_roots, without_server_paths
from openft.worker.recipe_process import start_recipe_process
from openft.worker.spare import SpareRecipe

log = logging.getLogger("openft.worker")

EXIT_GRACE_S = 30.0
# What the recipe's control file says when the job, as the heartbeat reads it, must stop.
CONTROL_WORDS: dict[JobStatus, str] = {"cancelled": "cancel", "paused": "pause"}


class JobRunner:
    def __init__(
        self,
        ctx: ServiceContext,
        job_id: str,
        *,
        heartbeat_s: float = 2.0,
        kill_grace_s: float = 30.0,
        spare: SpareRecipe | None = None,
    ):
        self.ctx = ctx
        self.spare = spare
        self.job_id = job_id
        self.heartbeat_s = heartbeat_s
        self.kill_grace_s = kill_grace_s
        self._finished = threading.Event()
        self._started_at = time.time()
        self._pace = RunPace()
        self._last_report_at = time.monotonic()  # any line from the recipe counts as a sign of life
        self._stalled_after_s: float | None = None  # set when the watcher stopped a silent recipe
        self._killed_on_request = False  # a cancel or pause the recipe did not obey within the grace time
        self._failure: job_runs.JobFailure | None = None  # the recipe's own "failed" report, if any
        self._private_roots: list[Path] = []  # where the job's and the server's files are (not for clients)

    def run(self) -> None:
        spec = job_reports.start_run(self.ctx, self.job_id)
        if spec is None:
            return
        output_dir = Path(spec.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        settings = self.ctx.settings
        self._private_roots = [output_dir, settings.data_dir, settings.models_dir, *python_roots()]
        RunLayout(output_dir).control_file.unlink(missing_ok=True)
        spec_path = output_dir / "run_spec.json"
        spec_path.write_text(spec.to_json())
        stderr_path = output_dir / "stderr.log"
        with open(stderr_path, "ab") as stderr:
            process = self._spare_process(spec_path, stderr_path) or start_recipe_process(
                training_command(spec_path, settings.train_processes),
                stderr,
                allocator=settings.train_allocator,
            )
            watcher = threading.Thread(target=self._watch, args=(process, output_dir), daemon=True)
            watcher.start()
            done = self._relay(process)
            returncode = self._reap(process, grace_s=EXIT_GRACE_S if done is not None else None)
            self._finished.set()
            watcher.join()
        self._conclude(done, returncode, stderr_path)

    def _spare_process(self, spec_path: Path, stderr_path: Path) -> subprocess.Popen[str] | None:
        """The worker's spare process, now running this job; None without one (or under torchrun)."""
        if self.spare is None or self.ctx.settings.train_processes > 1:
            return None
        return self.spare.take(spec_path, stderr_path)

    def _relay(self, process: subprocess.Popen[str]) -> dict[str, Any] | None:
        assert process.stdout is not None
        done = None
        for line in process.stdout:
            self._last_report_at = time.monotonic()
            try:
                report: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                log.info("job %s: %s", self.job_id, line.rstrip())
                continue
            if report.get("type") == "done":
                return report  # the outcome is known; a process slow to exit must not hold the job
            self._record(report)
        return done

    def _reap(self, process: subprocess.Popen[str], grace_s: float | None) -> int:
        """Wait for the recipe to exit; after its last report, kill it (and any torchrun ranks, which
        share its process group) if it has not exited within `grace_s`."""
        try:
            return process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            log.warning("job %s: the recipe did not exit after its last report; killing it", self.job_id)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            return process.wait()

    def _record(self, report: dict[str, Any]) -> None:
        kind = report.get("type")
        if kind == "progress":
            self._pace.progress(int(report["step"]), int(report["trained_tokens"]))
        elif kind == "metrics":
            step, total = int(report["step"]), int(report["total_steps"])
            self._pace.metrics(step, total)
            job_reports.record_metrics(
                self.ctx,
                self.job_id,
                step,
                total,
                report["data"],
                tokens_per_s=self._pace.tokens_per_s(),
                seconds_left=self._pace.seconds_left(),
            )
        elif kind == "checkpoint":
            total = self._pace.total_steps or int(report["step"])
            job_reports.record_checkpoint(
                self.ctx,
                self.job_id,
                step=int(report["step"]),
                total_steps=total,
                path=report["path"],
                metrics=report.get("metrics", {}),
            )
        elif kind == "failed":
            self._failure = job_runs.JobFailure(
                str(report["code"]), self._public(str(report["message"])), report.get("param")
            )
        elif kind == "message":
            text = self._public(str(report["text"]))
            job_reports.record_message(self.ctx, self.job_id, text, report.get("level", "info"))

    def _public(self, text: str) -> str:
        return without_server_paths(text, self._private_roots)

    def _conclude(self, done: dict[str, Any] | None, returncode: int, stderr_path: Path) -> None:
        if done is not None and done.get("status") == "succeeded":
            job_reports.complete_job(
                self.ctx,
                self.job_id,
                trained_tokens=int(done.get("trained_tokens", 0)),
                final_path=done.get("final_path"),
            )
        elif done is not None:
            job_reports.mark_stopped(self.ctx, self.job_id)
        elif self._killed_on_request:  # cancelled or paused, and killed for taking too long: no failure
            log.info(
                "job %s: the recipe was killed %.0f s after a stop request", self.job_id, self.kill_grace_s
            )
            job_reports.mark_stopped(self.ctx, self.job_id)
        elif self._failure is not None:  # the recipe said why (training diverged): pass that on as it is
            job_runs.fail_job(self.ctx, self.job_id, self._failure)
        else:
            tail = self._public(_tail(stderr_path))
            if self._stalled_after_s is not None:
                code = "training_stalled"
                why = (
                    f"Training reported nothing for {self._stalled_after_s:.0f} s "
                    f"(OPENFT_TRAIN_STALL_TIMEOUT_S), so it was stopped. Last error output: {tail or 'none'}."
                )
            else:
                code = "training_failed"
                why = f"Training stopped with exit code {returncode}: {tail or 'no error output'}."
            # The log's location is for the operator: the server log has it, the client sees the job id.
            log.warning("job %s failed (%s): %s; full log: %s", self.job_id, code, why, stderr_path)
            log_hint = "The recipe's full log is in the server's job directory (see the server log)."
            job_runs.fail_job(self.ctx, self.job_id, job_runs.JobFailure(code, f"{why} {log_hint}", None))

    def _watch(self, process: subprocess.Popen[str], output_dir: Path) -> None:
        stop_asked_at: float | None = None
        while not self._finished.wait(self.heartbeat_s):
            status = job_runs.heartbeat(self.ctx, self.job_id, self._estimated_finish())
            if status in CONTROL_WORDS and stop_asked_at is None:
                RunLayout(output_dir).control_file.write_text(CONTROL_WORDS[status])
                stop_asked_at = time.time()
            if stop_asked_at is not None and time.time() - stop_asked_at > self.kill_grace_s:
                self._killed_on_request = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            self._stop_if_stalled(process)

    def _stop_if_stalled(self, process: subprocess.Popen[str]) -> None:
        """A recipe that reports nothing for train_stall_timeout_s (a hang: every step and every start-up
        phase reports) is killed, so that one stuck process cannot hold the queue for ever."""
        limit = self.ctx.settings.train_stall_timeout_s
        silent_s = time.monotonic() - self._last_report_at
        if limit > 0 and silent_s > limit and self._stalled_after_s is None:
            log.warning("job %s: no report from the recipe for %.0f s; stopping it", self.job_id, silent_s)
            self._stalled_after_s = silent_s
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def _estimated_finish(self) -> int | None:
        return self._pace.estimated_finish()


def training_command(spec_path: Path, n_processes: int) -> list[str]:
    entry = ["-m", "openft.worker.entry", str(spec_path)]
    if n_processes <= 1:
        return [sys.executable, *entry]
    # torchrun starts one process per device; only rank 0 reports on stdout.
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={n_processes}",
    ]
    return [*launcher, *entry]


def _tail(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""
