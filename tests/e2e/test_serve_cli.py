"""`openft serve` as a user runs it: the console script in a subprocess, stopped with signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from openai import OpenAI

OPENFT = Path(sys.executable).with_name("openft")
READY_TIMEOUT_S = 60.0  # generous for a loaded CI machine
# Native libraries the API process must never load: each costs seconds and tens of MB to import.
HEAVY_LIBRARIES = ("torch", "transformers", "tokenizers", "numpy", "llguidance", "safetensors")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """The environment without OPENFT_* settings, so the command line alone decides."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENFT_")}


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    ready_after_s: float
    cpu_s_at_ready: float

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self, sig: int, timeout_s: float = 20.0) -> tuple[int, str, str]:
        self.process.send_signal(sig)
        stdout, stderr = self.process.communicate(timeout=timeout_s)
        return self.process.returncode, stdout, stderr


def start_serve(data_dir: Path, *extra: str, port_from_env: bool = False) -> Served:
    port = free_port()
    started = time.monotonic()
    where = [] if port_from_env else ["--port", str(port)]
    process = subprocess.Popen(
        [str(OPENFT), "serve", *where, "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean_env(), "OPENFT_PORT": str(port)} if port_from_env else clean_env(),
    )
    while True:
        if process.poll() is not None:
            stdout, stderr = process.communicate()
            raise AssertionError(f"openft serve exited with {process.returncode}:\n{stdout}\n{stderr}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() - started < READY_TIMEOUT_S, "openft serve did not answer"
        time.sleep(0.02)
    ready_after_s = time.monotonic() - started
    cpu = psutil.Process(process.pid).cpu_times()
    return Served(process, port, ready_after_s, cpu.user + cpu.system)


def assert_clean_stop(served: Served, sig: int) -> str:
    """Stop with `sig`; uvicorn shuts down gracefully, then re-raises the signal's default action."""
    code, stdout, stderr = served.stop(sig)
    assert code in (0, -sig), (code, stderr)
    assert "Application shutdown complete." in stderr
    assert "Finished server process" in stderr
    assert "Traceback" not in stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{served.port}/health", timeout=1)
    return stdout


def test_serve_in_local_mode_answers_the_sdk_starts_light_and_stops_on_sigterm(tmp_path: Path) -> None:
    served = start_serve(tmp_path / "data")
    try:
        process = psutil.Process(served.process.pid)
        heavy = [
            m.path for m in process.memory_maps() if any(f"/{lib}/" in m.path for lib in HEAVY_LIBRARIES)
        ]
        rss_mb = process.memory_info().rss / 2**20
        client = OpenAI(base_url=served.base_url, api_key="local", max_retries=0)
        body = b'{"prompt": "a", "completion": "b"}\n'
        created = client.files.create(file=("t.jsonl", body), purpose="fine-tune")
        assert [f.id for f in client.files.list()] == [created.id]
        assert client.files.content(created.id).content == body
        root_url = served.base_url.removesuffix("/v1")
        assert httpx.get(f"{root_url}/", timeout=10).headers["content-type"].startswith("text/html")
    finally:
        stdout = assert_clean_stop(served, signal.SIGTERM)

    # What keeps the start light is what the API does not import; that is asserted here. The start-up
    # time itself depends on the machine's load (CI measured 3.15 s CPU where a quiet machine takes
    # 2.1 s), so it is a figure to report (see the test's output with -s), not to assert.
    assert heavy == []
    assert rss_mb < 150, f"{rss_mb:.0f} MB resident at start"
    print(f"openft serve ready after {served.ready_after_s:.2f} s wall, {served.cpu_s_at_ready:.2f} s CPU")
    assert f"openft listening on {served.base_url}" in stdout
    assert f'client = OpenAI(base_url="{served.base_url}", api_key="local")' in stdout
    assert "from openai import OpenAI" in stdout
    assert f"dashboard: {served.base_url.removesuffix('/v1')}/" in stdout
    assert "Local mode" in stdout
    assert (tmp_path / "data" / "openft.db").is_file()


def test_serve_on_all_interfaces_without_a_key_refuses_and_says_how_to_make_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(OPENFT), "serve", "--host", "0.0.0.0", "--port", str(free_port()), "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )

    assert result.returncode == 2
    output = " ".join((result.stdout + result.stderr).split())
    assert "Refusing to listen on 0.0.0.0" in output
    assert "no API key exists" in output
    assert "openft keys create --project NAME" in output


def test_keys_from_the_cli_open_a_public_server_that_stops_on_sigint(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    made = subprocess.run(
        [str(OPENFT), "keys", "create", "--project", "team", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("sk-openft-")

    served = start_serve(data_dir, "--host", "0.0.0.0")
    try:
        client = OpenAI(base_url=served.base_url, api_key=key, max_retries=0)
        created = client.files.create(file=("a.bin", b"a"), purpose="vision")
        assert [f.id for f in client.files.list()] == [created.id]
        anonymous = httpx.get(f"{served.base_url}/files", headers={"authorization": "Bearer nope"})
        assert anonymous.status_code == 401
    finally:
        stdout = assert_clean_stop(served, signal.SIGINT)
    assert 'api_key="sk-openft-..."' in stdout
    assert "Local mode" not in stdout


def test_revoking_the_last_key_says_keys_stay_required_until_serve_local_mode(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    def openft(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(OPENFT), *args, "--data-dir", str(data_dir)]
        done = subprocess.run(command, capture_output=True, text=True, env=clean_env(), timeout=60)
        assert done.returncode == 0, done.stderr
        return done

    key = openft("keys", "create", "--project", "team").stdout.strip().splitlines()[-1]
    key_id = openft("keys", "list").stdout.split("key_", 1)[1].split()[0]
    revoked = " ".join(openft("keys", "revoke", f"key_{key_id}").stdout.split())
    assert "That was the last active key: the server still requires a key" in revoked
    assert "openft serve --local-mode" in revoked

    served = start_serve(data_dir)
    try:
        for token in (None, "local", key):
            headers = {"authorization": f"Bearer {token}"} if token else {}
            assert httpx.get(f"{served.base_url}/files", headers=headers).status_code == 401
    finally:
        stdout = assert_clean_stop(served, signal.SIGTERM)
    assert "Local mode" not in stdout

    served = start_serve(data_dir, "--local-mode")
    try:
        assert httpx.get(f"{served.base_url}/files").status_code == 200
        revoked_key = {"authorization": f"Bearer {key}"}
        assert httpx.get(f"{served.base_url}/files", headers=revoked_key).status_code == 401
    finally:
        stdout = assert_clean_stop(served, signal.SIGTERM)
    assert "Local mode" in stdout


def test_serve_listens_where_the_environment_says_when_no_option_does(tmp_path: Path) -> None:
    served = start_serve(tmp_path, port_from_env=True)  # OPENFT_PORT only, no --port
    try:
        assert httpx.get(f"http://127.0.0.1:{served.port}/health", timeout=5).json() == {"status": "ok"}
    finally:
        stdout = assert_clean_stop(served, signal.SIGTERM)
    assert f"127.0.0.1:{served.port}/v1" in stdout  # the banner names the port it listens on
