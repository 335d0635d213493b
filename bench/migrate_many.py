"""Benchmark: `openft migrate` of 100 fine-tune files and 20 jobs from one openft server to another.

Starts two `openft serve --no-worker` processes on temporary data dirs (the source's jobs stay in
`validating_files`, the target's copies are queued and never trained: the figures are the migration's
own). Through the official SDK it fills the source with 100 chat files (`--examples` lines each; every
tenth file repeats an earlier one's bytes, so the content dedup has work) and 20 supervised jobs on
openft-tiny, each with its own suffix, seed, metadata and hyperparameters. Then it runs
`openft migrate` (a subprocess, as a user would) twice against the same state file, and prints each
run's wall time and what it copied; the second run must copy nothing.

    .venv/bin/python bench/migrate_many.py [--files 100] [--jobs 20] [--examples 50] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from openai import OpenAI

from bench.live_server import OPENFT, start_server


def chat_file(index: int, n_examples: int) -> bytes:
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"Question {i} of file {index}?"},
                    {"role": "assistant", "content": f"Answer {i} of file {index}."},
                ]
            }
        )
        for i in range(n_examples)
    ]
    return ("\n".join(lines) + "\n").encode()


def fill_source(client: OpenAI, n_files: int, n_jobs: int, n_examples: int) -> int:
    """The files and jobs to migrate; returns how many distinct contents the files have."""
    file_ids, contents = [], set()
    for index in range(n_files):
        body = chat_file(index - 1 if index % 10 == 9 else index, n_examples)  # every tenth repeats
        contents.add(body)
        file_ids.append(client.files.create(file=(f"f{index}.jsonl", body), purpose="fine-tune").id)
    for index in range(n_jobs):
        client.fine_tuning.jobs.create(
            model="openft-tiny",
            training_file=file_ids[index],
            validation_file=file_ids[index + n_jobs],
            suffix=f"job{index}",
            seed=index,
            metadata={"batch": str(index)},
            hyperparameters={"n_epochs": 1 + index % 3, "batch_size": 4, "learning_rate_multiplier": 0.5},
        )
    return len(contents)


def migrate(source_url: str, target_url: str, state: Path) -> tuple[float, str]:
    env = dict(os.environ, OPENFT_MIGRATE_FROM_API_KEY="source", OPENAI_API_KEY="target", COLUMNS="200")
    command = [str(OPENFT), "migrate", "--from-base-url", source_url, "--base-url", target_url]
    command += ["--model-map", "openft-tiny=openft-tiny", "--state", str(state)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"openft migrate failed:\n{done.stdout}\n{done.stderr}")
    summary = [line for line in done.stdout.splitlines() if line.startswith("Copied ")]
    return elapsed, summary[-1] if summary else "(no summary line)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--examples", type=int, default=50, help="lines per file")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and print where")
    args = parser.parse_args()
    if args.files < 2 * args.jobs:
        raise SystemExit("--files must be at least twice --jobs (each job has its own two files)")

    root = Path(tempfile.mkdtemp(prefix="openft-migrate-bench-"))
    servers = []
    try:
        source_process, source_url = start_server(root / "source", worker=False)
        servers.append(source_process)
        target_process, target_url = start_server(root / "target", worker=False)
        servers.append(target_process)
        source, target = OpenAI(base_url=source_url, api_key="x"), OpenAI(base_url=target_url, api_key="x")
        n_contents = fill_source(source, args.files, args.jobs, args.examples)
        state = root / "state.json"

        first_s, first = migrate(source_url, target_url, state)
        second_s, second = migrate(source_url, target_url, state)
        n_target_files = len(list(target.files.list(purpose="fine-tune")))
        n_target_jobs = len(list(target.fine_tuning.jobs.list()))
    finally:
        for process in servers:
            process.terminate()
            process.wait(timeout=30)
        if args.keep:
            print(f"data dirs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    print(f"machine: {os.cpu_count()} cores {platform.machine()}, Python {platform.python_version()}")
    shape = f"{n_contents} distinct contents, {args.examples} lines each"
    print(f"source: {args.files} files ({shape}), {args.jobs} jobs")
    print(f"first run:  {first_s:6.2f} s  {first}")
    print(f"second run: {second_s:6.2f} s  {second}")
    print(f"target now: {n_target_files} fine-tune files, {n_target_jobs} jobs")
    if not second.startswith("Copied 0 file(s) and 0 job(s)"):
        raise SystemExit("the second run copied something")
    if (n_target_files, n_target_jobs) != (n_contents, args.jobs):
        raise SystemExit("the target does not hold one file per content and one job per source job")


if __name__ == "__main__":
    main()
