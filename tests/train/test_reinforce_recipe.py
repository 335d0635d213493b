"""The reinforcement recipe on openft-tiny: group-relative advantages, a resumed run that ends where an
uninterrupted one ends, and a multi grader's sub-rewards in the metrics."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from openft.graders.outcome import Outcome
from openft.train.reinforce import Rollout, _set_advantages, train_reinforcement
from openft.train.reporting import MemoryReporter
from openft.train.spec import ReinforcementHyperparameters, resolve_reinforcement
from tests.train.conftest import make_config

GRADER = {
    "type": "multi",
    "name": "letters",
    "graders": {
        "a": {"type": "python", "name": "a",
              "source": "def grade(sample, item):\n"
                        "    return min(1.0, sample['output_text'].count('a') / 8)\n"},
        "has_b": {"type": "string_check", "name": "has_b", "input": "{{sample.output_text}}",
                  "reference": "{{item.letter}}", "operation": "like"},
    },
    "calculate_output": "0.75 * a + 0.25 * has_b",
}  # fmt: skip


def rollout(prompt: int, reward: float) -> Rollout:
    return Rollout(prompt, [1], [2], "x", Outcome(reward))


def test_advantages_are_relative_to_each_group() -> None:
    rollouts = [rollout(0, 1.0), rollout(0, 0.0), rollout(1, 0.5), rollout(1, 0.5)]
    _set_advantages(rollouts)
    assert [r.advantage for r in rollouts] == pytest.approx([1.0, -1.0, 0.0, 0.0])  # a group that agrees: 0
    assert [r.informative for r in rollouts] == [True, True, False, False]  # and is left out of the update


def test_steps_where_every_group_agrees_leave_the_adapter_as_it_was(
    tiny_model: Path, prompts: Path, tmp_path: Path
) -> None:
    """A constant grader: every group agrees at every step, so no step moves the policy (the KL term
    alone would pull it around for nothing)."""
    constant = {"type": "python", "name": "half", "source": "def grade(sample, item):\n    return 0.5\n"}
    config = config_for(tiny_model, prompts, tmp_path / "constant")
    config = dataclasses.replace(config, reinforcement={**config.reinforcement, "grader": constant})
    reporter = MemoryReporter()
    done = train_reinforcement(config, reporter)
    assert done.status == "succeeded" and done.final_path is not None
    assert [values["train_groups_learned"] for _, _, values in reporter.steps] == [0.0] * 4
    adapter = load_file(str(Path(done.final_path) / "adapter_model.safetensors"))
    lora_b = [tensor for name, tensor in adapter.items() if "lora_B" in name]
    assert lora_b and all(bool((tensor == 0).all()) for tensor in lora_b)  # PEFT starts B at zero


@pytest.fixture(scope="module")
def prompts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rft") / "prompts.jsonl"
    lines = [{"messages": [{"role": "user", "content": f"Say it, {i}."}], "letter": "b"} for i in range(8)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def config_for(tiny_model: Path, prompts: Path, out: Path) -> Any:
    hp = ReinforcementHyperparameters(
        n_epochs=2, batch_size=4, learning_rate_multiplier=30, compute_multiplier=1
    )
    config = resolve_reinforcement(make_config(tiny_model, prompts, out, hp=hp), hp, grader=GRADER)
    return dataclasses.replace(config, reinforcement={**config.reinforcement, "max_new_tokens": 12})


def test_pause_then_resume_ends_where_an_uninterrupted_run_ends(
    tiny_model: Path, prompts: Path, tmp_path: Path
) -> None:
    whole = MemoryReporter()
    done = train_reinforcement(config_for(tiny_model, prompts, tmp_path / "whole"), whole)
    assert done.status == "succeeded" and done.final_path is not None
    rewards = [values["train_reward_mean"] for _, _, values in whole.steps]
    assert len(rewards) == 4
    assert {"train_reward_a", "train_reward_has_b", "valid_reward_mean"} <= set(whole.steps[-1][2])

    config = config_for(tiny_model, prompts, tmp_path / "parts")
    first = MemoryReporter(stop_at={2: "pause"})
    paused = train_reinforcement(config, first)
    assert paused.status == "paused" and paused.final_path is not None
    second = MemoryReporter()
    resumed = train_reinforcement(config, second, resume_from=Path(paused.final_path))
    assert resumed.status == "succeeded" and resumed.final_path is not None
    assert [values["train_reward_mean"] for _, _, values in first.steps + second.steps] == pytest.approx(
        rewards
    )
    a = load_file(str(Path(resumed.final_path) / "adapter_model.safetensors"))
    b = load_file(str(Path(done.final_path) / "adapter_model.safetensors"))
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
