"""A job whose training diverges fails with training_diverged: no ft: model, no checkpoint, no NaN.

The API refuses a learning_rate_multiplier above 100, and on the tiny model nothing up to that bound
diverges. So the recipe process here is the real one with one change at the process boundary: its
resolved learning rate is raised past any sane value (1e39: the first update overflows the weights, so
step 2 fails on every machine), as a job queued by an older server without the bound, or a model whose
weights overflow more easily, would train. Everything else is real: the
worker, the relay of the recipe's reports, the job's failure, the SDK.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from openft.worker import runner
from tests.jobs.conftest import start_job_server, synthetic_files, wait_for_job

if TYPE_CHECKING:
    from tests.conftest import ServerFactory

OVERFLOWING_RECIPE = """
import dataclasses, sys
from openft.train import spec
resolve = spec.resolve_supervised
spec.resolve_supervised = lambda *a, **k: dataclasses.replace(resolve(*a, **k), learning_rate=1e39)
from openft.worker import entry
sys.exit(entry.main(sys.argv[1:]))
"""


def test_a_diverging_job_fails_with_training_diverged_and_publishes_no_model(
    server_factory: ServerFactory, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def overflowing(spec_path: Path, n_processes: int) -> list[str]:
        return [sys.executable, "-c", OVERFLOWING_RECIPE, str(spec_path)]

    monkeypatch.setattr(runner, "training_command", overflowing)
    server = start_job_server(server_factory, tiny_model_dir, train_spare_process=False)
    client = server.client()
    training_file, validation_file = synthetic_files(client, n_train=10, n_valid=4)
    created = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=training_file,
        validation_file=validation_file,
        hyperparameters={"n_epochs": 2, "batch_size": 2},  # five steps an epoch: it diverges in the first
        suffix="diverged",
    )

    job = wait_for_job(client, created.id, timeout_s=120, diagnose=server.data_dir)
    assert job.status == "failed"
    assert job.error.code == "training_diverged"
    assert job.error.param == "hyperparameters.learning_rate_multiplier"
    assert job.error.message.startswith("Training diverged at step 2: ")
    assert "Lower hyperparameters.learning_rate_multiplier" in job.error.message
    assert job.fine_tuned_model is None
    assert list(client.fine_tuning.jobs.checkpoints.list(job.id)) == []
    assert not [m.id for m in client.models.list() if m.id.startswith("ft:")]
    assert not (server.data_dir / "jobs" / job.id / "final").exists()
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    assert [e.message for e in events if e.level == "error"] == [job.error.message]
    metrics = [e.data for e in events if e.type == "metrics"]
    assert metrics and all(
        math.isfinite(value) for data in metrics for key, value in (data or {}).items() if key != "step"
    )
