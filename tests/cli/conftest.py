"""Fixtures for `openft jobs`: one server with a worker per module, and the CLI run against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import Result
from typer.testing import CliRunner

from openft.cli.jobs import jobs_app
from tests.jobs.conftest import start_job_server, tiny_model_dir  # the session's built tiny model

if TYPE_CHECKING:
    from tests.conftest import LiveServer, ServerFactory

__all__ = ["cli_server", "run_jobs", "tiny_model_dir"]


@pytest.fixture(scope="module")
def cli_server(module_server_factory: ServerFactory, tiny_model_dir: Path) -> Iterator[LiveServer]:
    yield start_job_server(module_server_factory, tiny_model_dir)


def run_jobs(base_url: str, *args: str) -> Result:
    """`openft jobs ARGS` with the server chosen the way users do: OPENAI_BASE_URL and OPENAI_API_KEY.

    A wide terminal, so that tables keep whole lines for the assertions.
    """
    env = {"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "test", "COLUMNS": "250"}
    return CliRunner().invoke(jobs_app, list(args), env=env)
