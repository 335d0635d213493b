"""`openft eval` finds the server the way the other client commands do: `--base-url`, else OPENAI_BASE_URL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import typer
from typer.testing import CliRunner

from openft.cli.eval import eval_command
from tests.jobs.conftest import start_job_server

if TYPE_CHECKING:
    from tests.conftest import LiveServer, ServerFactory

app = typer.Typer()
app.command()(eval_command)
MODEL = "ft:openft-tiny:personal:demo:AbC123xY"


@pytest.fixture
def test_file(tmp_path: Path) -> Path:
    example = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps(example) + "\n")
    return path


def _eval(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--model", MODEL, "--baseline", "no-such-base", *args], env=env)
    return result.exit_code, " ".join(result.output.split())  # rich wraps the message


def test_openai_base_url_sends_the_evaluation_to_that_server(
    live_server: LiveServer, test_file: Path, tmp_path: Path
) -> None:
    env = {"OPENAI_BASE_URL": live_server.base_url, "OPENFT_DATA_DIR": str(tmp_path / "empty")}
    code, output = _eval(env, "--test-file", str(test_file))
    # The server answered (it knows neither model); no local lookup in an empty data dir.
    assert code == 1
    assert "does not exist" in output and "no project" not in output, output


def test_local_evaluates_here_even_with_openai_base_url_set(
    live_server: LiveServer, test_file: Path, tmp_path: Path
) -> None:
    env = {"OPENAI_BASE_URL": live_server.base_url, "OPENFT_DATA_DIR": str(tmp_path / "empty")}
    code, output = _eval(env, "--test-file", str(test_file), "--local")
    assert code == 1
    assert "this server has no project 'personal'" in output, output


def test_the_baseline_can_come_from_another_endpoint(
    server_factory: ServerFactory, tiny_model_dir: Path, test_file: Path, tmp_path: Path
) -> None:
    here = start_job_server(server_factory, tiny_model_dir)
    elsewhere = start_job_server(server_factory, tiny_model_dir)
    key = elsewhere.create_key("baseline")  # that endpoint now needs its key
    args = ["--model", "openft-tiny", "--baseline", "openft-tiny", "--test-file", str(test_file)]
    args += ["--base-url", here.base_url, "--baseline-base-url", elsewhere.base_url]
    results = tmp_path / "results.json"

    refused = CliRunner().invoke(app, args, env={"OPENFT_BASELINE_API_KEY": "sk-openft-wrong"})
    assert refused.exit_code == 1
    assert "Incorrect API key provided" in " ".join(refused.output.split())

    done = CliRunner().invoke(app, [*args, "--json", str(results)], env={"OPENFT_BASELINE_API_KEY": key})
    assert done.exit_code == 0, done.output
    report = json.loads(results.read_text())
    assert report["baseline"]["label"] == f"openft-tiny @ {elsewhere.base_url}"
    assert report["candidate"]["label"] == "openft-tiny"
    [row] = report["rows"]
    assert row["baseline"]["text"] == row["candidate"]["text"]  # the same model answered both


def test_a_remote_baseline_needs_its_name(test_file: Path) -> None:
    args = ["--model", "ft:openft-tiny:personal::AbC123xY", "--test-file", str(test_file)]
    result = CliRunner().invoke(app, [*args, "--baseline-base-url", "http://127.0.0.1:9/v1"])
    assert result.exit_code == 1
    assert "--baseline-base-url needs --baseline" in " ".join(result.output.split())
