"""bench/dpo_learning.py and bench/dpo_throughput.py, each through its whole code path on openft-tiny with
a handful of pairs (TRL's sides only where TRL is installed): the printed JSON carries what the docs'
tables are made of."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import dpo_pairs
from bench.dpo_throughput import has_trl

ROOT = Path(__file__).resolve().parents[2]


def run_module(module: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_pairs_differ_only_in_the_signature_and_held_out_prompts_are_new() -> None:
    train = dpo_pairs.make_pairs(24, seed=0)
    held_out = dpo_pairs.make_pairs(12, seed=1, held_out=True)
    for line in train + held_out:
        preferred = line["preferred_output"][0]["content"]
        assert dpo_pairs.is_signed(preferred)
        assert preferred == f"{line['non_preferred_output'][0]['content']}\n\n{dpo_pairs.SIGNATURE}"
        assert not dpo_pairs.is_signed(line["non_preferred_output"][0]["content"])
    prompts = {json.dumps(line["input"]) for line in train}
    assert not prompts & {json.dumps(line["input"]) for line in held_out}
    assert dpo_pairs.make_pairs(24, seed=0) == train  # seeded


@pytest.mark.slow
def test_dpo_learning_reports_reward_accuracy_and_signed_shares(tmp_path: Path) -> None:
    result = run_module(
        "bench.dpo_learning",
        *("--model", "openft-tiny", "--models-dir", str(tmp_path / "models"), "--work", str(tmp_path / "w")),
        *("--n-train", "8", "--n-held-out", "4", "--n-epochs", "2", "--batch-size", "4"),
    )
    assert result["steps"] == 4  # 8 pairs, batch 4, 2 epochs
    assert result["hyperparameters"]["beta"] == 0.1  # "auto"
    assert result["hyperparameters"]["sft_weight"] == 1.0  # "auto"
    assert result["final_train_sft_loss"] > 0
    assert len(result["epoch_full_valid_reward_accuracy"]) == 2
    assert 0.0 <= result["final_full_valid_reward_accuracy"] <= 1.0
    assert result["first_train_loss"] == pytest.approx(0.6931, abs=1e-3)  # policy = reference at step 1
    for key in ("base_signed_share", "fine_tuned_signed_share", "base_prefers_preferred"):
        assert 0.0 <= result[key] <= 1.0
    assert result["train_seconds"] > 0 and result["trained_tokens"] > 0
    assert len(result["samples"]) == 3


@pytest.mark.slow
def test_dpo_throughput_reports_each_side_and_the_ratios(tmp_path: Path) -> None:
    sides = "openft,trl" if has_trl() else "openft,openft-fp32"
    summary = run_module(
        "bench.dpo_throughput",
        *("--model", "openft-tiny", "--models-dir", str(tmp_path / "models"), "--work", str(tmp_path / "w")),
        *("--n-pairs", "8", "--sides", sides),
    )
    assert set(summary["sides"]) == set(sides.split(","))
    for run in summary["sides"].values():
        assert len(run["losses"]) == 2  # 8 pairs, batch 4
        assert run["first_loss"] == pytest.approx(0.6931, abs=1e-3)
        assert run["tokens_per_s"] > 0 and run["peak_rss_mib"] > 0
    # Both sides count the same pairs' tokens.
    assert len({run["train_tokens"] for run in summary["sides"].values()}) == 1
    if has_trl():
        ratio = summary["ratios"]["openft/trl"]
        assert set(ratio) == {"tokens_per_s", "tokens_per_cpu_s", "peak_rss", "max_loss_gap", "mean_loss_gap"}
    else:
        assert summary["ratios"] == {}
