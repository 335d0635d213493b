"""Clients see ids and relative names: no event or job error carries a path of the server's disk."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from openft.worker import runner
from openft.worker.public_text import python_roots, without_server_paths
from tests.jobs.conftest import start_job_server, synthetic_files, wait_for_job

if TYPE_CHECKING:
    from openai import OpenAI

    from tests.conftest import LiveServer, ServerFactory

# A "/" at the start of the text, or after a space, quote or bracket, followed by a named part and
# another "/": how an absolute path starts (a ratio such as 3/10 or a URL does not match).
ABSOLUTE_PATH = re.compile(r"(?:^|[\s'\"(\[=])/[\w.-]+/")


def _assert_no_server_paths(texts: list[str], server: LiveServer) -> None:
    private = [str(server.data_dir), sys.prefix, sys.base_prefix, str(Path(__file__).parents[2])]
    for text in texts:
        assert not any(root in text for root in private), text
        assert not ABSOLUTE_PATH.search(text), text


def _all_text(client: OpenAI, job_id: str) -> list[str]:
    job = client.fine_tuning.jobs.retrieve(job_id)
    events = [e.message for e in client.fine_tuning.jobs.list_events(job_id, limit=100)]
    return [*events, job.error.message or ""]


def test_a_finished_jobs_events_name_no_server_path(
    server_factory: ServerFactory, tiny_model_dir: Path
) -> None:
    server = start_job_server(server_factory, tiny_model_dir)
    client = server.client()
    training_file, _ = synthetic_files(client, n_train=10, n_valid=2)
    created = client.fine_tuning.jobs.create(
        model="openft-tiny", training_file=training_file, hyperparameters={"n_epochs": 1, "batch_size": 5}
    )
    job = wait_for_job(client, created.id, timeout_s=120, diagnose=server.data_dir)
    assert job.status == "succeeded"
    texts = _all_text(client, job.id)
    assert any(text.endswith("tokens trained, model in final/") for text in texts), texts
    _assert_no_server_paths(texts, server)


CRASHING_RECIPE = """
import os, sys
print("Traceback (most recent call last):", file=sys.stderr)
print(f'  File "{os.__file__}", line 1, in <module>', file=sys.stderr)
print(f"OSError: cannot read {sys.argv[1]}", file=sys.stderr)
sys.exit(2)
"""


def test_a_crashed_jobs_error_names_no_server_path(
    server_factory: ServerFactory, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recipe's last words on stderr name its spec by absolute path; the job error keeps only the
    file's name, and no longer says where the log is on the server's disk."""

    def crashing(spec_path: Path, n_processes: int) -> list[str]:
        return [sys.executable, "-c", CRASHING_RECIPE, str(spec_path)]

    monkeypatch.setattr(runner, "training_command", crashing)
    server = start_job_server(server_factory, tiny_model_dir, train_spare_process=False)
    client = server.client()
    training_file, _ = synthetic_files(client, n_train=10, n_valid=2)
    created = client.fine_tuning.jobs.create(model="openft-tiny", training_file=training_file)
    job = wait_for_job(client, created.id, timeout_s=60, diagnose=server.data_dir)
    assert job.status == "failed" and job.error.code == "training_failed"
    assert job.error.message.startswith(
        "Training stopped with exit code 2: OSError: cannot read run_spec.json."
    )
    _assert_no_server_paths(_all_text(client, job.id), server)


def test_paths_under_the_roots_become_relative_and_others_lose_their_directories() -> None:
    job_dir, data_dir = Path("/srv/openft/jobs/ftjob-1"), Path("/srv/openft")
    roots = [data_dir, job_dir, *python_roots()]
    stdlib = Path(re.__file__)
    assert without_server_paths(f"model in {job_dir}/final", roots) == "model in final"
    assert without_server_paths(f"blob {data_dir}/files/ab12", roots) == "blob files/ab12"
    assert without_server_paths(f'File "{stdlib}", line 3', roots) == 'File "re/__init__.py", line 3'
    assert without_server_paths("No such file: '/home/me/x/config.json'", roots) == (
        "No such file: 'config.json'"
    )
    kept = "step 3/10, and/or http://host:8000/v1/models"
    assert without_server_paths(kept, roots) == kept
