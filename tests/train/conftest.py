"""Shared fixtures for the training tests: the built-in tiny model, synthetic data, config builders."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from openft.models.builtin import builtin_spec, ensure_builtin_model
from openft.train.config import SFTConfig
from openft.train.spec import SupervisedHyperparameters as Hyperparameters
from openft.train.spec import resolve_supervised as resolve_config
from openft.train.synthetic import make_split, write_jsonl

TINY = "openft-tiny"

# Threads that sleep while they wait: on a busy machine spinning ones make steps several times slower.
# Effective where torch is not loaded yet, and in the subprocesses the tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_builtin_model(TINY, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """24 training and 8 validation examples of the synthetic task."""
    root = tmp_path_factory.mktemp("data")
    train, valid = make_split(n_train=24, n_held_out=8, seed=1)
    return write_jsonl(root / "train.jsonl", train), write_jsonl(root / "valid.jsonl", valid)


@pytest.fixture(scope="session")
def config_for() -> Any:
    """`config_for(model_dir, train_file, output_dir, ...)`: see `make_config`."""
    return make_config


def make_config(
    model_dir: Path,
    train_file: Path,
    output_dir: Path,
    *,
    valid_file: Path | None = None,
    hp: Hyperparameters | None = None,
    seed: int = 0,
    init_adapter_path: str | None = None,
    **overrides: Any,
) -> SFTConfig:
    """A config resolved as the worker resolves it, with `overrides` applied on top."""
    n_examples = sum(1 for line in train_file.read_text().splitlines() if line.strip())
    spec = builtin_spec(TINY)
    config = resolve_config(
        hp or Hyperparameters(),
        n_train_examples=n_examples,
        base_model_name=TINY,
        base_model_path=str(model_dir),
        defaults=spec.defaults,
        training_file=str(train_file),
        validation_file=str(valid_file) if valid_file else None,
        output_dir=str(output_dir),
        seed=seed,
        init_adapter_path=init_adapter_path,
        context_length=spec.context_length,
    )
    return dataclasses.replace(config, **overrides)


@dataclasses.dataclass
class ReferenceRun:
    config: SFTConfig
    reporter: Any  # MemoryReporter
    result: Any  # TrainResult


@pytest.fixture(scope="session")
def reference_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, small_data: tuple[Path, Path]
) -> ReferenceRun:
    """LoRA rank 8, 4 epochs of 6 steps (batch 4), validation every 4 steps: what other tests compare to."""
    from openft.train.reporting import MemoryReporter
    from openft.train.sft import train_sft

    train_file, valid_file = small_data
    config = make_config(
        tiny_model,
        train_file,
        tmp_path_factory.mktemp("reference"),
        valid_file=valid_file,
        hp=Hyperparameters(n_epochs=4, batch_size=4, lora_rank=8),
        eval_every_n_steps=4,
        n_valid_batch_examples=4,
    )
    reporter = MemoryReporter()
    result = train_sft(config, reporter)
    return ReferenceRun(config, reporter, result)
