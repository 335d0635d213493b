"""The DPO recipe on openft-tiny: reward accuracy rises on a learnable preference, a resumed run ends
where an uninterrupted one ends, and the run writes its metrics, checkpoints and result file."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from openft.train.dpo import REFERENCE_FILE, train_dpo
from openft.train.reporting import MemoryReporter
from openft.train.spec import PreferenceHyperparameters, resolve_preference
from tests.train.conftest import make_config

QUESTIONS = [f"Question number {i}: what do you say?" for i in range(16)]


def write_pairs(path: Path, questions: list[str]) -> Path:
    # Learnable: the preferred answer is always the same short phrase, the rejected one another.
    lines = [
        {
            "input": {"messages": [{"role": "user", "content": q}]},
            "preferred_output": [{"role": "assistant", "content": "Gladly, here it is."}],
            "non_preferred_output": [{"role": "assistant", "content": "No. Go away."}],
        }
        for q in questions
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pairs")
    return write_pairs(root / "train.jsonl", QUESTIONS[:12]), write_pairs(
        root / "valid.jsonl", QUESTIONS[12:]
    )


def dpo_config(
    tiny_model: Path, files: tuple[Path, Path], out: Path, sft_weight: float = 0.0, **overrides: Any
) -> Any:
    """Plain DPO by default (sft_weight 0), whose rewards these tests follow."""
    hp = PreferenceHyperparameters(
        n_epochs=3, batch_size=4, lora_rank=8, learning_rate_multiplier=4, beta=0.5, sft_weight=sft_weight
    )
    supervised = make_config(tiny_model, files[0], out, valid_file=files[1], hp=hp, eval_every_n_steps=3)
    return dataclasses.replace(resolve_preference(supervised, hp), **overrides)


@pytest.fixture(scope="module")
def uninterrupted(
    tiny_model: Path, pair_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    config = dpo_config(tiny_model, pair_files, tmp_path_factory.mktemp("dpo"))
    reporter = MemoryReporter()
    result = train_dpo(config, reporter)
    return config, reporter, result


def test_reward_accuracy_rises_and_the_loss_falls_below_chance(uninterrupted: Any) -> None:
    _, reporter, result = uninterrupted
    assert result.status == "succeeded"
    steps = [values for _, _, values in reporter.steps]
    assert len(steps) == 9  # 12 pairs, batch 4, 3 epochs
    # Step 1: the policy is the reference, so every reward is 0 and the loss is log 2.
    assert steps[0]["train_loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert steps[0]["train_reward_margin"] == pytest.approx(0, abs=1e-4)
    assert steps[-1]["train_loss"] < 0.5 * math.log(2)
    assert steps[-1]["train_reward_accuracy"] == 1.0
    assert steps[-1]["full_valid_reward_accuracy"] == 1.0  # held-out prompts, same preference
    assert steps[-1]["full_valid_reward_margin"] > 0.5
    assert steps[-1]["train_preferred_reward"] > 0 > steps[-1]["train_non_preferred_reward"]


def test_the_supervised_term_makes_the_preferred_outputs_likely(
    uninterrupted: Any, tiny_model: Path, pair_files: tuple[Path, Path], tmp_path: Path
) -> None:
    plain_config, plain, _ = uninterrupted
    config = dpo_config(tiny_model, pair_files, tmp_path, sft_weight=1.0)
    assert (config.sft_weight, plain_config.sft_weight) == (1.0, 0.0)
    # With the term the recipe trains at the supervised rate, without it at a tenth of it.
    assert config.learning_rate == pytest.approx(10 * plain_config.learning_rate)
    anchored = MemoryReporter()
    assert train_dpo(config, anchored).status == "succeeded"
    first, last = anchored.steps[0][2], anchored.steps[-1][2]
    # Step 1 reports the DPO loss alone (log 2: the policy is the reference) and the supervised loss apart.
    assert first["train_loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert first["train_sft_loss"] == pytest.approx(plain.steps[0][2]["train_sft_loss"], rel=1e-4)
    assert last["full_valid_sft_loss"] < 0.7 * first["train_sft_loss"]
    assert last["full_valid_sft_loss"] < plain.steps[-1][2]["full_valid_sft_loss"]
    assert last["full_valid_reward_accuracy"] == 1.0


def test_the_run_writes_checkpoints_reference_and_result_file(uninterrupted: Any) -> None:
    config, reporter, result = uninterrupted
    out = Path(config.output_dir)
    assert [c[0] for c in reporter.checkpoints] == [3, 6, 9]
    assert all("full_valid_reward_accuracy" in c[3] for c in reporter.checkpoints)
    assert (out / REFERENCE_FILE).is_file()
    assert (Path(result.final_path) / "adapter_model.safetensors").is_file()
    saved = json.loads((Path(result.final_path) / "openft_config.json").read_text())
    assert (saved["training_method"], saved["beta"]) == ("dpo", 0.5)
    with (out / "results.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert [row["step"] for row in rows] == [str(s) for s in range(1, 10)]
    assert float(rows[-1]["train_reward_accuracy"]) == 1.0
    assert rows[2]["valid_reward_accuracy"] != ""  # validation at step 3


def test_pause_then_resume_ends_where_an_uninterrupted_run_ends(
    uninterrupted: Any, tiny_model: Path, pair_files: tuple[Path, Path], tmp_path: Path
) -> None:
    _, reference, done = uninterrupted
    config = dpo_config(tiny_model, pair_files, tmp_path)
    first = MemoryReporter(stop_at={4: "pause"})
    paused = train_dpo(config, first)
    assert paused.status == "paused" and paused.final_path is not None
    second = MemoryReporter()
    resumed = train_dpo(config, second, resume_from=Path(paused.final_path))
    assert resumed.status == "succeeded"
    assert [step for step, _, _ in second.steps] == list(range(5, 10))
    expected = [values["train_loss"] for _, _, values in reference.steps][4:]
    assert [values["train_loss"] for _, _, values in second.steps] == pytest.approx(expected, rel=1e-4)
    assert resumed.final_path is not None and done.final_path is not None
    a = load_file(str(Path(resumed.final_path) / "adapter_model.safetensors"))
    b = load_file(str(Path(done.final_path) / "adapter_model.safetensors"))
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
