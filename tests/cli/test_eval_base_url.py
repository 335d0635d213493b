"""`openft eval` finds the server the way the other client commands do: `--base-url`, else OPENAI_BASE_URL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import typer
from typer.testing import CliRunner

from openft.cli.eval import eval_command

if TYPE_CHECKING:
    from tests.conftest import LiveServer

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
