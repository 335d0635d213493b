"""Hyperparameter resolution: OpenAI's epoch rule, per-model defaults, extensions, JSON round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from openft.data.epochs import auto_epochs as auto_n_epochs
from openft.models.defaults import PRETRAINED_DEFAULTS, TrainingDefaults
from openft.train.config import SFTConfig
from openft.train.spec import ConfigError
from openft.train.spec import SupervisedHyperparameters as Hyperparameters
from openft.train.spec import resolve_supervised as resolve_config

SCRATCH = TrainingDefaults(
    method="full", full_learning_rate=1e-3, lora_learning_rate=3e-3, lora_rank=16, lora_alpha=32, batch_size=2
)


def _resolve(
    hp: Hyperparameters, n: int = 100, defaults: TrainingDefaults | None = SCRATCH, **kw: object
) -> SFTConfig:
    args: dict = dict(
        n_train_examples=n,
        base_model_name="m",
        base_model_path="/models/m",
        defaults=defaults,
        training_file="t.jsonl",
        validation_file=None,
        output_dir="/out",
        seed=7,
        context_length=1024,
    )
    args.update(kw)
    return resolve_config(hp, **args)


@pytest.mark.parametrize(
    ("n_examples", "epochs"),
    [
        (1, 25),
        (3, 25),
        (5, 20),
        (10, 10),
        (33, 3),
        (34, 3),
        (100, 3),
        (8333, 3),
        (8334, 2),
        (12_500, 2),
        (30_000, 1),
    ],
)
def test_auto_epochs_follow_openai_rule(n_examples: int, epochs: int) -> None:
    assert auto_n_epochs(n_examples) == epochs


def test_all_auto_takes_the_model_defaults() -> None:
    config = _resolve(Hyperparameters(), n=10)
    assert (config.method, config.n_epochs, config.batch_size) == ("full", 10, 2)
    assert config.learning_rate == pytest.approx(1e-3)
    assert config.learning_rate_multiplier == 1.0
    assert config.max_seq_length == 1024
    assert config.lora_target_modules == ["all-linear"]


def test_pretrained_models_default_to_lora() -> None:
    config = _resolve(Hyperparameters(), defaults=None)
    assert config.method == "lora"
    assert config.learning_rate == pytest.approx(PRETRAINED_DEFAULTS.lora_learning_rate)
    assert config.lora_rank == PRETRAINED_DEFAULTS.lora_rank


def test_numbers_override_auto_and_multiplier_scales_the_methods_rate() -> None:
    hp = Hyperparameters(n_epochs=2, batch_size=8, learning_rate_multiplier=0.5, lora_rank=8)
    config = _resolve(hp)
    assert (config.method, config.n_epochs, config.batch_size, config.lora_rank) == ("lora", 2, 8, 8)
    assert config.lora_alpha == 16  # the model's alpha/rank ratio (32/16) is kept
    assert config.learning_rate == pytest.approx(3e-3 * 0.5)
    assert _resolve(Hyperparameters(full_finetune=False)).method == "lora"
    assert _resolve(Hyperparameters(full_finetune=True), defaults=None).method == "full"


def test_batch_size_never_exceeds_the_file() -> None:
    assert _resolve(Hyperparameters(batch_size=64), n=10).batch_size == 10


def test_bad_values_are_refused_with_the_field_named() -> None:
    for bad in (dict(n_epochs=0), dict(n_epochs=51), dict(batch_size=257), dict(n_epochs=True)):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            Hyperparameters(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="learning_rate_multiplier"):
        Hyperparameters(learning_rate_multiplier=0)
    with pytest.raises(ConfigError, match="exclude"):
        Hyperparameters(lora_rank=8, full_finetune=True)
    with pytest.raises(ConfigError, match="context"):
        _resolve(Hyperparameters(max_seq_length=4096))
    with pytest.raises(ConfigError, match="unknown hyperparameter"):
        Hyperparameters.from_dict({"n_epochs": 2, "beta": 0.1})


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"n_epochs": True}, "n_epochs", 'n_epochs must be "auto" or an integer from 1 to 50; got true'),
        ({"n_epochs": 1.5}, "n_epochs", "got 1.5"),
        ({"n_epochs": 2.0}, "n_epochs", "got 2.0"),
        ({"batch_size": "4"}, "batch_size", 'got "4"'),
        ({"full_finetune": "yes"}, "full_finetune", 'full_finetune must be true, false or null; got "yes"'),
        ({"full_finetune": 1}, "full_finetune", "got 1"),
        ({"lora_rank": [8]}, "lora_rank", "lora_rank must be null or an integer from 1 to 1024; got [8]"),
        ({"learning_rate_multiplier": float("inf")}, "learning_rate_multiplier", "got Infinity"),
        ({"learning_rate_multiplier": float("nan")}, "learning_rate_multiplier", "got NaN"),
        ({"learning_rate_multiplier": 100.5}, "learning_rate_multiplier", "at most 100; got 100.5"),
        ({"learning_rate_multiplier": False}, "learning_rate_multiplier", "got false"),
        ({"lora_rank": 8, "full_finetune": True}, "lora_rank", "exclude each other"),
        ({"warmup": 3}, "warmup", "unknown hyperparameter"),
    ],
)
def test_wrong_types_are_not_coerced_and_the_error_names_its_field(
    values: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Hyperparameters.from_dict(values)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_the_multiplier_bound_is_inclusive() -> None:
    assert Hyperparameters(learning_rate_multiplier=100).learning_rate_multiplier == 100


def test_api_dict_with_nulls_means_auto() -> None:
    hp = Hyperparameters.from_dict({"n_epochs": 4, "batch_size": None, "learning_rate_multiplier": "auto"})
    assert hp == Hyperparameters(n_epochs=4)


def test_continuing_an_adapter_keeps_its_shape(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"r": 4, "lora_alpha": 12, "target_modules": ["v_proj", "q_proj"]})
    )
    config = _resolve(Hyperparameters(), init_adapter_path=str(adapter))
    assert (config.method, config.lora_rank, config.lora_alpha) == ("lora", 4, 12)
    assert config.lora_target_modules == ["q_proj", "v_proj"]
    with pytest.raises(ConfigError, match="full_finetune"):
        _resolve(Hyperparameters(full_finetune=True), init_adapter_path=str(adapter))
    with pytest.raises(ConfigError, match=r"adapter_config\.json"):
        _resolve(Hyperparameters(), init_adapter_path=str(tmp_path))


def test_config_json_round_trip_and_errors() -> None:
    config = _resolve(Hyperparameters(lora_rank=8))
    assert SFTConfig.from_json(config.to_json()) == config
    values = json.loads(config.to_json())
    with pytest.raises(ConfigError, match="unknown config field"):
        SFTConfig.from_json(json.dumps({**values, "surprise": 1}))
    del values["seed"]
    with pytest.raises(ConfigError, match="incomplete"):
        SFTConfig.from_json(json.dumps(values))
    with pytest.raises(ConfigError, match="not valid JSON"):
        SFTConfig.from_json("{")


def test_train_package_and_config_import_without_torch() -> None:
    code = (
        "import sys, openft.train, openft.train.config, openft.train.reporting, openft.train.plan, "
        "openft.train.synthetic, openft.cli.train; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
