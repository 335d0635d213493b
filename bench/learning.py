"""Learning: does fine-tuning with every hyperparameter on "auto" teach a pretrained model a task?

    .venv/bin/python bench/learning.py [--tasks routing,extraction,marv] [--model smollm2-135m-instruct]
        [--data-dir DIR]

For each task of bench/learning_tasks.py (ticket routing, JSON extraction, the guide's Marv), through a
live `openft serve` on a free port and the official openai SDK: upload the training file, create a job
with no hyperparameters (all "auto"), poll it to the end, then ask the base model and the fine-tuned
model every held-out prompt through chat completions (temperature 0) and score the replies. Prints,
per task: examples, the resolved hyperparameters, training wall time, base and fine-tuned scores, and
the share of fine-tuned replies that ended at the end-of-turn token (finish_reason "stop").

The server runs on a temporary data dir unless --data-dir names one: the packaged model is converted
into the data dir on first use (about 30 s), so pass the same --data-dir again to skip that.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI

from learning_tasks import TASKS, Example, Task
from openft.train.synthetic import write_jsonl

OPENFT = Path(sys.executable).with_name("openft")
SIZES = {"routing": (200, 40), "extraction": (200, 40), "marv": (60, 24)}  # (train, held out)
JOB_TIMEOUT_S = 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="routing,extraction,marv")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    names = [name.strip() for name in args.tasks.split(",") if name.strip()]
    unknown = sorted(set(names) - set(TASKS))
    if unknown:
        raise SystemExit(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    with tempfile.TemporaryDirectory(prefix="openft-learning-") as scratch:
        data_dir = args.data_dir or Path(scratch)
        data_dir.mkdir(parents=True, exist_ok=True)
        server, base_url = start_server(data_dir)
        try:
            client = OpenAI(base_url=base_url, api_key="bench")
            for name in names:
                print(run_task(client, TASKS[name], args.model, Path(scratch)), flush=True)
        finally:
            server.terminate()
            server.wait(30)


def run_task(client: OpenAI, task: Task, model: str, scratch: Path) -> str:
    n_train, n_held_out = SIZES[task.name]
    train, held_out = task.make(n_train, n_held_out, 0)
    path = write_jsonl(scratch / f"{task.name}.jsonl", train)
    with path.open("rb") as handle:
        file = client.files.create(file=handle, purpose="fine-tune")
    started = time.monotonic()
    job = client.fine_tuning.jobs.create(model=model, training_file=file.id)
    while job.status not in ("succeeded", "failed", "cancelled"):
        if time.monotonic() - started > JOB_TIMEOUT_S:
            raise SystemExit(f"job {job.id} did not finish in {JOB_TIMEOUT_S} s")
        time.sleep(2)
        job = client.fine_tuning.jobs.retrieve(job.id)
    train_s = time.monotonic() - started
    if job.status != "succeeded" or not job.fine_tuned_model:
        raise SystemExit(f"job {job.id} {job.status}: {job.error}")
    base, _ = score(client, model, task, held_out)
    tuned, stopped = score(client, job.fine_tuned_model, task, held_out)
    hp = job.hyperparameters
    return (
        f"{task.name:<10} {n_train} train / {n_held_out} held out | auto -> n_epochs {hp.n_epochs}, "
        f"batch {hp.batch_size}, lr x{hp.learning_rate_multiplier} | train {train_s:.0f} s "
        f"({job.trained_tokens} tokens) | held-out score: base {base:.2f} -> fine-tuned {tuned:.2f} "
        f"| ended with stop {stopped:.2f}"
    )


def score(client: OpenAI, model: str, task: Task, examples: list[Example]) -> tuple[float, float]:
    """(share of replies the task scores correct, share that ended at the end-of-turn token)."""
    correct = stopped = 0
    for example in examples:
        reply = client.chat.completions.create(
            model=model, messages=example["messages"][:-1], max_tokens=task.max_tokens, temperature=0
        )
        choice = reply.choices[0]
        correct += task.score(example, choice.message.content or "")
        stopped += choice.finish_reason == "stop"
    return correct / len(examples), stopped / len(examples)


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("OPENFT_")}
    # One generation thread: on a CPU shared with training and other work, more threads spin and stall.
    env["OPENFT_INFERENCE_CPU_THREADS"] = "1"
    log = (data_dir / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(OPENFT), "serve", "--port", str(port), "--data-dir", str(data_dir), "--log-level", "warning"],
        stdout=log,
        stderr=log,
        env=env,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process, f"http://127.0.0.1:{port}/v1"
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"openft serve did not start; see {data_dir / 'serve.log'}")
        time.sleep(0.1)


if __name__ == "__main__":
    main()
