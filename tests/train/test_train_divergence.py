"""A learning rate that makes training overflow stops the run; nothing of the broken weights is published."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from openft.train.divergence import TrainingDiverged
from openft.train.reporting import MemoryReporter
from openft.train.sft import train_sft
from openft.train.spec import SupervisedHyperparameters as Hyperparameters

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("batch_size", "learning_rate", "step", "what", "n_reported"),
    [
        # Finite but huge weights after step 1. The RMSNorms scale the huge activations back, so step 2's
        # loss and gradients are still numbers (openft.train.lean_layers); step 2's update makes step 3's
        # gradients NaN.
        (4, 1e20, 3, "the ", 2),
        # One step per epoch: the update overflows the weights on the step that ends the epoch, whose
        # loss was still fine; the checkpoint must not be written.
        (24, 1e39, 1, "a trained weight", 1),
    ],
    ids=["loss", "weights-at-checkpoint"],
)
def test_a_diverging_run_stops_naming_the_step_and_the_multiplier(
    tiny_model: Path,
    small_data: tuple[Path, Path],
    config_for: Any,
    tmp_path: Path,
    batch_size: int,
    learning_rate: float,
    step: int,
    what: str,
    n_reported: int,
) -> None:
    train_file, _ = small_data
    config = config_for(
        tiny_model,
        train_file,
        tmp_path / "run",
        hp=Hyperparameters(n_epochs=2, batch_size=batch_size),
        learning_rate=learning_rate,
    )
    reporter = MemoryReporter()
    with pytest.raises(TrainingDiverged) as caught:
        train_sft(config, reporter)
    message = str(caught.value)
    assert caught.value.step == step
    assert message.startswith(f"Training diverged at step {step}: {what}")
    assert "is not a finite number" in message
    assert "Lower hyperparameters.learning_rate_multiplier" in message
    assert caught.value.code == "training_diverged"
    assert caught.value.param == "hyperparameters.learning_rate_multiplier"
    assert not (tmp_path / "run" / "final").exists()
    assert reporter.checkpoints == []
    assert not list((tmp_path / "run").glob("checkpoints/step-*"))
    # What was reported before the stop is all numbers: no NaN reaches the events or results.csv.
    assert [s for s, _, _ in reporter.steps] == list(range(1, n_reported + 1))
    assert all(math.isfinite(v) for _, _, values in reporter.steps for v in values.values())


def test_a_sane_but_high_multiplier_trains_to_the_end(
    tiny_model: Path, small_data: tuple[Path, Path], config_for: Any, tmp_path: Path
) -> None:
    """The bound (100) keeps runs finite on the tiny model: the checks stop only what is broken."""
    train_file, _ = small_data
    hp = Hyperparameters(n_epochs=1, batch_size=4, learning_rate_multiplier=100)
    config = config_for(tiny_model, train_file, tmp_path / "run", hp=hp)
    result = train_sft(config, MemoryReporter())
    assert result.status == "succeeded"
    weights = load_file(str(tmp_path / "run" / "final" / "model.safetensors"))
    assert all(bool(torch.isfinite(tensor).all()) for tensor in weights.values())
