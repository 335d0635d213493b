"""A built-in model trained with its own defaults learns a small task in a few seconds on a CPU.

This is the promise behind the defaults (docs/models.md): with every hyperparameter on "auto", a job on
a random-init model must show learning. The loop here is a plain one, not the project's recipe.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from openft.data.render import RenderedChat, render_chat
from openft.models.builtin import BUILTIN_MODELS
from openft.models.defaults import TrainingDefaults

PAIRS = [("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "Lima"), ("Kenya", "Nairobi")]
N_EPOCHS = 10


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Matrices this small gain nothing from threads, and on a busy CI machine two spinning threads
    # made these steps several times slower than one.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _examples(model_dir: Path) -> list[RenderedChat]:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return [
        render_chat(
            tokenizer,
            [
                {"role": "user", "content": f"What is the capital of {country}?"},
                {"role": "assistant", "content": f"The capital of {country} is {city}."},
            ],
        )
        for country, city in PAIRS
    ]


def _mean_loss(model: torch.nn.Module, examples: list[RenderedChat]) -> float:
    with torch.no_grad():
        return sum(_loss(model, example).item() for example in examples) / len(examples)


def _loss(model: torch.nn.Module, example: RenderedChat) -> torch.Tensor:
    ids = torch.tensor([example.input_ids])
    labels = torch.tensor(
        [[t if m else -100 for t, m in zip(example.input_ids, example.loss_mask, strict=True)]]
    )
    return model(input_ids=ids, labels=labels).loss


def _train(
    model: torch.nn.Module, examples: list[RenderedChat], learning_rate: float, batch_size: int
) -> None:
    torch.manual_seed(0)
    order = random.Random(0)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
    for _ in range(N_EPOCHS):
        shuffled = order.sample(examples, len(examples))
        for start in range(0, len(shuffled), batch_size):
            batch = shuffled[start : start + batch_size]
            loss = sum(_loss(model, example) for example in batch) / len(batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad()


def test_tiny_defaults_are_full_fine_tuning_from_scratch() -> None:
    defaults = BUILTIN_MODELS["openft-tiny"].defaults
    assert defaults.method == "full"
    assert defaults.learning_rate == defaults.full_learning_rate
    assert defaults.learning_rate_for("lora") > defaults.learning_rate_for("full")


def test_tiny_model_learns_with_its_default_method(tiny_dir: Path) -> None:
    defaults: TrainingDefaults = BUILTIN_MODELS["openft-tiny"].defaults
    examples = _examples(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    before = _mean_loss(model, examples)
    _train(model, examples, defaults.learning_rate, defaults.batch_size)
    after = _mean_loss(model, examples)
    assert before > 5.0  # chance level over 259 tokens is ln(259) = 5.56
    assert after < 0.4 * before, (before, after)


def test_tiny_model_learns_with_lora_defaults(tiny_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model

    defaults = BUILTIN_MODELS["openft-tiny"].defaults
    examples = _examples(tiny_dir)
    lora = LoraConfig(r=defaults.lora_rank, lora_alpha=defaults.lora_alpha, target_modules="all-linear")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_dir), lora)
    before = _mean_loss(model, examples)
    _train(model, examples, defaults.learning_rate_for("lora"), defaults.batch_size)
    after = _mean_loss(model, examples)
    assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize("name", sorted(BUILTIN_MODELS))
def test_every_builtin_has_sane_defaults(name: str) -> None:
    defaults = BUILTIN_MODELS[name].defaults
    assert defaults.method in ("full", "lora")
    assert 0 < defaults.full_learning_rate < defaults.lora_learning_rate < 0.01
    assert defaults.lora_alpha >= defaults.lora_rank >= 4
    assert defaults.batch_size >= 1
