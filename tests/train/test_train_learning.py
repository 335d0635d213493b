"""The promise of the defaults: everything on "auto", the tiny model learns a task it has never seen.

openft-tiny starts from a random init, so before training it answers nothing right. About a minute of
CPU training with the model's own defaults (method, learning rate, batch size) and OpenAI's epoch rule
must teach it the synthetic task well enough to answer held-out prompts exactly.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from openft.models.builtin import builtin_spec
from openft.train.adapters import load_for_inference
from openft.train.reporting import MemoryReporter
from openft.train.sft import train_sft
from openft.train.synthetic import make_split, write_jsonl
from tests.train.greedy import exact_match

pytestmark = pytest.mark.slow


def test_all_auto_tiny_model_learns_held_out_answers(
    tiny_model: Path, tmp_path: Path, config_for: Any, record_property: Any
) -> None:
    train, held_out = make_split(n_train=400, n_held_out=50, seed=0)
    config = config_for(tiny_model, write_jsonl(tmp_path / "train.jsonl", train), tmp_path / "out")
    defaults = builtin_spec("openft-tiny").defaults
    assert (config.method, config.batch_size, config.n_epochs) == (defaults.method, defaults.batch_size, 3)

    base, tokenizer = load_for_inference(tiny_model)
    before = exact_match(base, tokenizer, held_out)
    reporter = MemoryReporter()
    started = time.perf_counter()
    result = train_sft(config, reporter)
    train_s = time.perf_counter() - started
    tuned, tokenizer = load_for_inference(result.final_path)
    after = exact_match(tuned, tokenizer, held_out)

    losses = reporter.train_losses
    first, last = sum(losses[:50]) / 50, sum(losses[-50:]) / 50
    record_property("train_s", round(train_s, 1))
    record_property("exact_match", (before, after))
    summary = f"{len(losses)} steps in {train_s:.1f} s, loss {first:.2f} -> {last:.2f}"
    print(f"\n{summary}; exact match {before} -> {after}")
    assert before <= 0.02
    assert last < 0.2 * first
    assert after >= 0.8
