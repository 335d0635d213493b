"""The promise of "auto" on a pretrained chat model: smollm2-135m-instruct learns a task it cannot do.

Prompted with the system message that lists the five teams, the base model answers in sentences, so it
routes almost no held-out ticket with the team name alone. With every hyperparameter on "auto" (the
catalog entry's defaults and the epoch rule) a couple of minutes of CPU training must teach it to,
well enough that the earlier, underfitting default (LoRA lr 2e-4) would fail.
Skipped where the packaged model is not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.learning_tasks import routing_split, score_exact
from openft.models.catalog import Catalog
from openft.train.adapters import load_for_inference
from openft.train.reporting import MemoryReporter
from openft.train.sft import train_sft
from openft.train.spec import SupervisedHyperparameters as Hyperparameters
from openft.train.spec import resolve_supervised as resolve_config
from openft.train.synthetic import write_jsonl
from tests.train.greedy import greedy_reply

pytestmark = pytest.mark.slow

NAME = "smollm2-135m-instruct"


def held_out_score(model_path: str | Path, examples: list[dict[str, Any]]) -> float:
    model, tokenizer = load_for_inference(model_path)
    hits = 0
    for example in examples:
        reply = greedy_reply(model, tokenizer, example["messages"][:-1], max_new_tokens=8)
        hits += score_exact(example, reply)
    return hits / len(examples)


def test_all_auto_smollm2_learns_to_route_held_out_tickets(
    smollm2_models_dir: Path, tmp_path: Path, record_property: Any
) -> None:
    train, held_out = routing_split(n_train=80, n_held_out=30, seed=0)
    model = Catalog(smollm2_models_dir).resolve_spec(NAME)
    config = resolve_config(
        Hyperparameters(),
        n_train_examples=len(train),
        base_model_name=model.name,
        base_model_path=str(model.path),
        defaults=model.defaults,
        training_file=str(write_jsonl(tmp_path / "train.jsonl", train)),
        validation_file=None,
        output_dir=str(tmp_path / "out"),
        seed=0,
        context_length=model.context_length,
    )
    assert config.method == "lora"

    before = held_out_score(model.path, held_out)
    result = train_sft(config, MemoryReporter())
    assert result.status == "succeeded" and result.final_path is not None
    after = held_out_score(result.final_path, held_out)

    record_property("exact_match", (before, after))
    print(f"\n{config.n_epochs} epochs, lr {config.learning_rate}: exact match {before:.2f} -> {after:.2f}")
    assert before <= 0.4
    # 1e-3 (the default) measured 1.00; the earlier 2e-4 underfit to 0.80, and broken training scores ~0.
    assert after >= 0.9
