"""Benchmark: a fine-tuning job's fixed cost around its training steps. Goal: under 2 s for each of

  (a) from `jobs.create` returning to the job's first `metrics` event, and
  (b) from the last step's `metrics` event to status `succeeded`,

on the built-in openft-tiny model (5 steps of 4 examples, 1 epoch), over 3 jobs run one after another,
each created once the server is idle.

It starts `openft serve` (with its in-process worker) as a subprocess on a temporary data dir. The tiny
model is built first, with `openft models build`, so that its one-time build is not counted. The worker
keeps a spare recipe process with torch & co imported (openft.worker.spare); `--compare` runs the same
jobs again on a server started with OPENFT_TRAIN_SPARE_PROCESS=false (every job starts a fresh process),
and prints both tables. Then, to see what the recipe process spends its time on, the server is restarted
with PYTHONPROFILEIMPORTTIME=1, which the recipe process inherits, and runs one more job (not in the
figures, as the profile slows imports): its stderr log (`<data dir>/jobs/<job id>/stderr.log`) lists
every import after the job reached its process and its time (with a spare, the imports it did while
waiting are in `<data dir>/logs/`). `--no-import-profile` leaves that job out.

Events are timed by when they appear: the benchmark reads the server's SQLite database (read-only) every
20 ms, which unlike polling the API costs the server no CPU (the events' `created_at` is in whole
seconds, too coarse for this; it is printed as a cross-check), and watches the server's child processes
(psutil) for the recipe process that runs the job (the one child it has while a job runs: the spare,
or a fresh process) and its end. (a) is broken into validation, queue wait, the job reaching its
process, the process's way to its "Training ..." message (imports unless a spare did them, config,
data, model load) and the first step; (b) into the final checkpoint, the process's exit and the result
file/registration.

    .venv/bin/python bench/job_overhead.py [--jobs 3] [--compare] [--no-import-profile] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from openai import OpenAI

from openft.train.synthetic import make_split, write_jsonl

OPENFT = Path(sys.executable).with_name("openft")
POLL_S = 0.02
GOAL_S = 2.0
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+\d+ \| +(\S+)")
# Milestones of a job's life, by the first words of their event message.
VALIDATED, STARTED, TRAINING = "Files validated", "Fine-tuning job started", "Training "
FINISHED, SUCCEEDED = "Training finished", "The job has successfully completed"


@dataclass
class Timeline:
    """When each of a job's events arrived and when its training subprocess lived (time.time() seconds)."""

    job_id: str
    created_at: float
    arrivals: list[tuple[float, int, str, str]] = field(default_factory=list)  # (at, created_at, type, text)
    child_started_at: float | None = None
    child_gone_at: float | None = None

    def first(self, prefix: str = "", kind: str = "message") -> tuple[float, int]:
        return next((at, ts) for at, ts, t, text in self.arrivals if t == kind and text.startswith(prefix))

    def metrics(self) -> list[tuple[float, int]]:
        return [(at, ts) for at, ts, t, _ in self.arrivals if t == "metrics"]

    def phases(self) -> dict[str, float]:
        validated, started = self.first(VALIDATED)[0], self.first(STARTED)[0]
        loaded, finished, done = self.first(TRAINING)[0], self.first(FINISHED)[0], self.first(SUCCEEDED)[0]
        steps = [at for at, _ in self.metrics()]
        assert self.child_started_at is not None and self.child_gone_at is not None
        return {
            "a: create -> first metrics": steps[0] - self.created_at,
            "  validation (worker poll + data check)": validated - self.created_at,
            "  queue wait": started - validated,
            "  started event -> recipe process seen": self.child_started_at - started,
            "  recipe process: imports, data, model load": loaded - self.child_started_at,
            "  first step": steps[0] - loaded,
            "  (later steps, median interval)": statistics.median(
                b - a for a, b in itertools.pairwise(steps)
            ),
            "b: last metrics -> succeeded": done - steps[-1],
            "  final checkpoint and publish": finished - steps[-1],
            "  recipe process exit": self.child_gone_at - finished,
            "  result file + model registration": done - self.child_gone_at,
        }

    def whole_seconds(self) -> tuple[int, int]:
        """(a) and (b) from the events' own created_at (whole seconds)."""
        created, first_step = self.first("Created")[1], self.metrics()[0][1]
        return first_step - created, self.first(SUCCEEDED)[1] - self.metrics()[-1][1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, profile_imports: bool, spare: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENFT_")}
    env["OPENFT_TRAIN_SPARE_PROCESS"] = "true" if spare else "false"
    if profile_imports:
        env["PYTHONPROFILEIMPORTTIME"] = "1"
    log = open(data_dir / "serve.log", "wb")  # noqa: SIM115 (lives as long as the server)
    process = subprocess.Popen(
        [str(OPENFT), "serve", "--port", str(port), "--data-dir", str(data_dir), "--log-level", "warning"],
        stdout=log,
        stderr=log,
        env=env,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process, f"http://127.0.0.1:{port}/v1"
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"openft serve did not start; see {data_dir / 'serve.log'}")
        time.sleep(0.05)


def wait_until_idle(server: psutil.Process, window_s: float = 0.5, timeout_s: float = 120) -> None:
    """Until the server and its children use under a tenth of a CPU over `window_s`: each job is created
    on an idle server, as a user would meet it (its spare recipe process done with its imports)."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        total = 0.0
        for process in [server, *server.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        if last is not None and total - last < 0.1 * window_s:
            return
        last = total
        time.sleep(window_s)


def run_job(client: OpenAI, training_file: str, server: psutil.Process, database: Path) -> Timeline:
    wait_until_idle(server)
    job = client.fine_tuning.jobs.create(
        model="openft-tiny", training_file=training_file, hyperparameters={"n_epochs": 1, "batch_size": 4}
    )
    timeline = Timeline(job.id, time.time())
    # Read-only reads of the server's SQLite file: watching closely this way costs the server nothing,
    # where polling the API every few milliseconds would compete with the job for the CPU.
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    last_seq, child = 0, None
    try:
        while not (timeline.arrivals and timeline.arrivals[-1][3].startswith(SUCCEEDED)):
            rows = db.execute(
                "SELECT seq, created_at, type, message, level FROM job_events WHERE job_id = ? AND seq > ? "
                "ORDER BY seq",
                (job.id, last_seq),
            ).fetchall()
            now = time.time()
            for seq, created_at, kind, message, level in rows:
                last_seq = seq
                timeline.arrivals.append((now, created_at, kind, message))
                if level == "error":
                    raise SystemExit(f"job {job.id} failed: {message}")
            if any(text.startswith(STARTED) for _, _, _, text in timeline.arrivals):
                child = watch_child(server, child, timeline, now)
            if now - timeline.created_at > 600:
                raise SystemExit(f"job {job.id} did not finish in 10 minutes")
            time.sleep(POLL_S)
    finally:
        db.close()
    assert client.fine_tuning.jobs.retrieve(job.id).status == "succeeded"
    return timeline


def watch_child(
    server: psutil.Process, child: psutil.Process | None, timeline: Timeline, now: float
) -> psutil.Process | None:
    """Notes when the job's recipe process was first and last seen, from the job's start on: the
    server's one child then (a waiting spare is its child before, and a new one after, the job)."""
    if child is None and timeline.child_started_at is None:
        children = server.children()
        if children:
            child = children[0]
            timeline.child_started_at = now
    elif child is not None and not child.is_running():
        timeline.child_gone_at = now
        child = None
    return child


def import_profile(stderr_log: Path) -> dict[str, float]:
    """Seconds spent importing each top-level package (its modules' own time, so nothing counts twice),
    from a PYTHONPROFILEIMPORTTIME stderr log."""
    seconds: dict[str, float] = {}
    for line in stderr_log.read_text(errors="replace").splitlines():
        match = IMPORT_LINE.match(line)
        if match:
            package = match.group(2).split(".")[0]
            seconds[package] = seconds.get(package, 0.0) + int(match.group(1)) / 1e6
    return seconds


def other_stderr(stderr_log: Path) -> list[str]:
    lines = stderr_log.read_text(errors="replace").splitlines()
    return [line for line in lines if line.strip() and "import time:" not in line]


def report(timelines: list[Timeline]) -> None:
    phases = [t.phases() for t in timelines]
    header = "".join(f"{f'job {i + 1}':>9}" for i in range(len(phases)))
    print(f"\n{'seconds':<56}{header}{'median':>9}")
    for name in phases[0]:
        values = [p[name] for p in phases]
        print(f"{name:<56}" + "".join(f"{v:9.2f}" for v in values) + f"{statistics.median(values):9.2f}")
    whole = "".join(f"{f'{a}, {b}':>9}" for a, b in (t.whole_seconds() for t in timelines))
    print(f"{'(a), (b) from the events created_at, whole seconds':<56}{whole}")
    for key in ("a: create -> first metrics", "b: last metrics -> succeeded"):
        median = statistics.median(p[key] for p in phases)
        verdict = "meets" if median < GOAL_S else "misses"
        print(f"{key}: median {median:.2f} s -> {verdict} the {GOAL_S:.0f} s goal")


def report_profile(timeline: Timeline, stderr_log: Path) -> None:
    top = sorted(import_profile(stderr_log).items(), key=lambda item: -item[1])
    named = ", ".join(f"{name} {seconds:.2f}" for name, seconds in top[:7])
    process_s = timeline.phases()["  recipe process: imports, data, model load"]
    print(f"\nProfiled job {timeline.job_id} (imports slower under the profile; not in the table):")
    imports_s = sum(seconds for _, seconds in top)
    print(f"  recipe process to 'Training ...': {process_s:.2f} s, of which imports {imports_s:.2f} s")
    print(f"  by package (own time of its modules): {named}")
    print("  other stderr lines:")
    for line in other_stderr(stderr_log)[:3]:
        print(f"    {line[:150]}")


def run_jobs(
    data_dir: Path, training_path: Path, n_jobs: int, *, profile_imports: bool, spare: bool
) -> list[Timeline]:
    server, base_url = start_server(data_dir, profile_imports, spare)
    try:
        client = OpenAI(base_url=base_url, api_key="local", max_retries=0)
        training_file = client.files.create(file=training_path, purpose="fine-tune").id
        timelines = []
        for _ in range(n_jobs):
            timelines.append(
                run_job(client, training_file, psutil.Process(server.pid), data_dir / "openft.db")
            )
            print(f"job {timelines[-1].job_id} succeeded{' (import profile)' if profile_imports else ''}")
        return timelines
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--compare", action="store_true", help="also run the jobs without a spare process")
    parser.add_argument("--no-import-profile", action="store_true", help="skip the profiled extra job")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and print its path")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="openft-bench-"))
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    try:
        started = time.perf_counter()
        env = {**os.environ, "OPENFT_DATA_DIR": str(data_dir)}
        subprocess.run(
            [str(OPENFT), "models", "build", "openft-tiny"], env=env, check=True, capture_output=True
        )
        build_s = time.perf_counter() - started
        print(f"openft-tiny built in {build_s:.1f} s (before the server starts; not counted)")
        training_path = write_jsonl(data_dir / "train.jsonl", make_split(20, 0, seed=0)[0])
        print("\nWith a spare recipe process (the default):")
        report(run_jobs(data_dir, training_path, args.jobs, profile_imports=False, spare=True))
        if args.compare:
            print("\nWithout (OPENFT_TRAIN_SPARE_PROCESS=false: a fresh process per job):")
            report(run_jobs(data_dir, training_path, args.jobs, profile_imports=False, spare=False))
        if not args.no_import_profile:
            (profiled,) = run_jobs(data_dir, training_path, 1, profile_imports=True, spare=True)
            report_profile(profiled, data_dir / "jobs" / profiled.job_id / "stderr.log")
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    finally:
        if args.keep:
            print(f"data dir kept: {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
