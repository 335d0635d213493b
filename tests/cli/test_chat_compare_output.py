"""`openft chat --compare` into a pipe or a log: the side-by-side table once, ending its line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from typer.testing import CliRunner

from openft.cli.chat import chat
from tests.jobs.conftest import start_job_server

if TYPE_CHECKING:
    from tests.conftest import ServerFactory

app = typer.Typer()
app.command()(chat)


def test_compare_output_ends_with_a_newline(server_factory: ServerFactory, tiny_model_dir: Path) -> None:
    server = start_job_server(server_factory, tiny_model_dir)
    args = ["openft-tiny", "--compare", "openft-tiny", "-m", "Hi", "--max-tokens", "4", "--temperature", "0"]
    result = CliRunner().invoke(app, [*args, "--base-url", server.base_url], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert result.output.count("openft-tiny") == 2  # one table, its two column headers
    assert result.output.endswith("┘\n"), repr(result.output[-40:])
