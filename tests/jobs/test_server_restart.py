"""A server killed with SIGKILL mid-job loses nothing: on restart the running job resumes, queued jobs run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.conftest import TEST_DATABASE_URL
from tests.jobs.conftest import event_messages, synthetic_files, wait_for_job


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServeProcess:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ServeProcess:
        env = {k: v for k, v in os.environ.items() if k != "OPENFT_DATABASE_URL"}
        command = [sys.executable, "-m", "openft.cli.main", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--log-level", "warning"]
        log_path = self.data_dir / f"serve-{time.monotonic_ns()}.log"  # read if the test fails
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, "openft serve exited"
            assert time.monotonic() < deadline, "openft serve did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


@pytest.fixture
def data_dir(tmp_path: Path, tiny_model_dir: Path) -> Iterator[Path]:
    shutil.copytree(tiny_model_dir, tmp_path / "models" / tiny_model_dir.name)
    yield tmp_path


@pytest.mark.skipif(TEST_DATABASE_URL is not None, reason="exercises the embedded SQLite default")
def test_kill_9_the_server_mid_job_and_restart(data_dir: Path) -> None:
    server = ServeProcess(data_dir).start()
    client = OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
    try:
        training_file, _ = synthetic_files(client, n_train=20, n_valid=4)
        hyperparameters = {"n_epochs": 4, "batch_size": 2}
        running = client.fine_tuning.jobs.create(
            model="openft-tiny", training_file=training_file, hyperparameters=hyperparameters
        ).id
        waiting = client.fine_tuning.jobs.create(
            model="openft-tiny", training_file=training_file, hyperparameters={"n_epochs": 1}
        ).id
        deadline = time.monotonic() + 120
        while not any(m.startswith("Checkpoint created") for m in event_messages(client, running)):
            assert time.monotonic() < deadline, "no checkpoint before the deadline"
            time.sleep(0.2)
        server.kill()

        server.start()  # same data dir, same port
        assert client.fine_tuning.jobs.retrieve(waiting).status in ("queued", "running")
        first = wait_for_job(client, running, timeout_s=240, diagnose=data_dir)
        assert first.status == "succeeded", first.error
        messages = event_messages(client, running)
        assert any(m.startswith("Fine-tuning job resumed from step-") for m in messages)
        steps = {int(m.split("/")[0].removeprefix("Step ")) for m in messages if m.startswith("Step ")}
        assert steps == set(range(1, 4 * 10 + 1))
        second = wait_for_job(client, waiting, timeout_s=240, diagnose=data_dir)
        assert second.status == "succeeded", second.error
    finally:
        server.terminate()
