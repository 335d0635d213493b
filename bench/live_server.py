"""`openft serve` as a subprocess on a free loopback port and a data dir of the bench's, for benches that
measure through the HTTP API as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

OPENFT = Path(sys.executable).with_name("openft")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, *, worker: bool = True) -> tuple[subprocess.Popen[bytes], str]:
    """The server process and its /v1 base URL, once /health answers; the bench's own OPENFT_* settings
    are not passed on."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENFT_")}
    command = [
        str(OPENFT),
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--log-level",
        "warning",
    ]
    if not worker:
        command.append("--no-worker")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"openft serve exited: {process.stderr.read().decode() if process.stderr else ''}"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process, f"http://127.0.0.1:{port}/v1"
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("openft serve did not answer within 60 s")
