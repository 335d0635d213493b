"""One real fine-tune shared by the evaluation tests: openft-tiny trained on the synthetic task.

The data dir is laid out like a server's (models/, the SQLite database), and the trained model is also
registered there under an `ft:` name, so the command can resolve it the way the server does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from openft.inference.config import EngineConfig
from openft.inference.local import LocalEngine
from openft.models.builtin import ensure_builtin_model
from openft.services.auth import ensure_project
from openft.services.context import ServiceContext
from openft.settings import Settings
from openft.store.tables import FineTunedModelRow
from openft.train.synthetic import make_split, write_jsonl
from tests.train.conftest import make_config

# Threads that sleep while they wait (see tests/train/conftest.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

FT_NAME = "ft:openft-tiny:personal:synthetic:evaltest"


@dataclass(frozen=True)
class TrainedModel:
    data_dir: Path
    base_dir: Path
    run_dir: Path  # the `openft train` output: final/ and checkpoints/
    test_file: Path  # 40 held-out examples
    ft_name: str
    train_s: float

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, database_url=None)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """Full fine-tune with openft-tiny's defaults, 400 examples, 3 epochs: about 30 s on two CPU cores."""
    from openft.train.reporting import MemoryReporter
    from openft.train.sft import train_sft

    data_dir = tmp_path_factory.mktemp("openft")
    base_dir = ensure_builtin_model("openft-tiny", data_dir / "models")
    train, held_out = make_split(n_train=400, n_held_out=40, seed=0)
    run_dir = data_dir / "runs" / "synthetic"
    config = make_config(base_dir, write_jsonl(data_dir / "train.jsonl", train), run_dir)
    started = time.perf_counter()
    result = train_sft(config, MemoryReporter())
    train_s = time.perf_counter() - started
    assert result.status == "succeeded"
    model = TrainedModel(
        data_dir, base_dir, run_dir, write_jsonl(data_dir / "test.jsonl", held_out), FT_NAME, train_s
    )
    _register(model)
    return model


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    """The inference engine the local runner answers through (as the server's, one CPU thread)."""
    # float32 products on every CPU: tests compare scores with float32 transformers models to 1e-4.
    engine = LocalEngine(EngineConfig(cpu_threads=1, max_request_s=0, dtype="float32"))
    yield engine
    engine.close()


def _register(model: TrainedModel) -> None:
    """The row a succeeded job leaves for its model."""
    ctx = ServiceContext.open(model.settings)
    try:
        project = ensure_project(ctx, "personal")
        with ctx.db.session() as session:
            session.add(
                FineTunedModelRow(
                    name=model.ft_name,
                    project_id=project.id,
                    job_id="ftjob-evaltest",
                    base_model="openft-tiny",
                    path=str(model.run_dir / "final"),
                    created_at=int(time.time()),
                )
            )
    finally:
        ctx.close()
