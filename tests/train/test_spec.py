"""The job spec: the "auto" rules, errors that name their param, example counting, base models, layout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from openft.data.epochs import auto_epochs
from openft.models.defaults import PRETRAINED_DEFAULTS, TrainingDefaults
from openft.models.errors import UnknownModelError
from openft.train.config import SFTConfig
from openft.train.spec import (
    CONFIG_FILE,
    KEEP_CHECKPOINTS,
    STATE_FILE,
    ConfigError,
    HyperparameterError,
    RunLayout,
    SupervisedHyperparameters,
    count_examples,
    find_base_model,
    parse_hyperparameters,
    resolve_job,
    resolve_supervised,
    resolved_hyperparameters,
    step_of,
)
from tests.train.conftest import ReferenceRun

DEFAULTS = TrainingDefaults(
    method="lora", full_learning_rate=1e-4, lora_learning_rate=1e-3, lora_rank=8, lora_alpha=16, batch_size=6
)
WIRE_DEFAULTS = {
    "n_epochs": "auto",
    "batch_size": "auto",
    "learning_rate_multiplier": "auto",
    "lora_rank": None,
    "full_finetune": None,
    "max_seq_length": None,
}


def _resolve(hp: SupervisedHyperparameters, n_train_examples: int) -> SFTConfig:
    return resolve_supervised(
        hp,
        n_train_examples=n_train_examples,
        base_model_name="m",
        base_model_path="/models/m",
        defaults=DEFAULTS,
        training_file="t.jsonl",
        validation_file=None,
        output_dir="/out",
        seed=1,
        context_length=512,
    )


@pytest.mark.parametrize("n_train_examples", [1, 4, 10, 40, 9000, 30_000])
def test_the_job_echoes_the_numbers_the_recipe_trains_with(n_train_examples: int) -> None:
    echoed = resolved_hyperparameters(WIRE_DEFAULTS, defaults=DEFAULTS, n_train_examples=n_train_examples)
    config = _resolve(SupervisedHyperparameters(), n_train_examples)
    assert echoed["n_epochs"] == config.n_epochs == auto_epochs(n_train_examples)
    assert echoed["batch_size"] == config.batch_size == min(DEFAULTS.batch_size, n_train_examples)
    assert echoed["learning_rate_multiplier"] == config.learning_rate_multiplier == 1.0
    assert config.learning_rate == DEFAULTS.lora_learning_rate
    # The extensions are the recipe's to decide; the job echoes them as asked.
    assert {k: echoed[k] for k in ("lora_rank", "full_finetune", "max_seq_length")} == {
        "lora_rank": None,
        "full_finetune": None,
        "max_seq_length": None,
    }


def test_given_values_are_echoed_as_given() -> None:
    requested = {**WIRE_DEFAULTS, "n_epochs": 2, "batch_size": 64, "learning_rate_multiplier": 2}
    echoed = resolved_hyperparameters(requested, defaults=DEFAULTS, n_train_examples=10)
    assert echoed == requested
    assert isinstance(echoed["learning_rate_multiplier"], int)  # 2 stays 2 on the wire, not 2.0
    # The recipe never takes a step bigger than the file.
    assert _resolve(SupervisedHyperparameters(batch_size=64), 10).batch_size == 10


def test_a_file_without_examples_is_refused_naming_the_training_file() -> None:
    with pytest.raises(ConfigError, match="no examples") as caught:
        _resolve(SupervisedHyperparameters(), 0)
    assert caught.value.field == "training_file"


@pytest.mark.parametrize(
    ("values", "param"),
    [
        ({"n_epochs": 0}, "method.supervised.hyperparameters.n_epochs"),
        ({"batch_size": True}, "method.supervised.hyperparameters.batch_size"),
        ({"learning_rate_multiplier": 0}, "method.supervised.hyperparameters.learning_rate_multiplier"),
        ({"lora_rank": 4, "full_finetune": True}, "method.supervised.hyperparameters.lora_rank"),
        ({"max_seq_length": 1}, "method.supervised.hyperparameters.max_seq_length"),
    ],
)
def test_a_bad_hyperparameter_error_carries_its_param(values: dict[str, object], param: str) -> None:
    with pytest.raises(HyperparameterError) as caught:
        parse_hyperparameters("supervised", {**WIRE_DEFAULTS, **values})
    assert caught.value.param_at("method.supervised.hyperparameters") == param


def test_an_error_about_no_single_hyperparameter_points_at_the_whole_object() -> None:
    error = HyperparameterError("the combination is wrong")
    assert error.field is None and error.param_at("hyperparameters") == "hyperparameters"


@pytest.mark.parametrize(
    ("method", "values", "field"),
    [
        ("dpo", {"beta": 0}, "beta"),
        ("dpo", {"beta": 2.5}, "beta"),
        ("reinforcement", {"full_finetune": True}, "full_finetune"),
        ("reinforcement", {"compute_multiplier": 11}, "compute_multiplier"),
        ("reinforcement", {"eval_samples": 0}, "eval_samples"),
        ("reinforcement", {"reasoning_effort": "max"}, "reasoning_effort"),
    ],
)
def test_each_method_checks_its_own_hyperparameters(method: Any, values: dict[str, Any], field: str) -> None:
    with pytest.raises(HyperparameterError) as caught:
        parse_hyperparameters(method, values)
    assert caught.value.field == field
    assert (
        caught.value.param_at(f"method.{method}.hyperparameters")
        == f"method.{method}.hyperparameters.{field}"
    )


def test_examples_are_non_blank_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    example = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    path.write_text(f"{example}\n\n   \n{example}\nnot json\n{example}")
    assert count_examples(path) == 3


def test_a_catalog_model_gives_its_defaults_without_being_built(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    base = find_base_model(models_dir, "openft-tiny")
    assert base.name == "openft-tiny"
    assert base.defaults != PRETRAINED_DEFAULTS  # the built-in model's own recipe
    assert base.context_length > 0
    assert not models_dir.exists() or not any(models_dir.iterdir())


def test_a_model_directory_is_a_base_model_only_where_directories_are_allowed(
    tmp_path: Path, tiny_model: Path
) -> None:
    base = find_base_model(tmp_path, str(tiny_model), directory_ok=True)
    assert (base.defaults, base.path()) == (PRETRAINED_DEFAULTS, tiny_model.resolve())
    with pytest.raises(UnknownModelError):  # a job names catalog models only
        find_base_model(tmp_path, str(tiny_model))


def test_resolve_job_counts_the_file_and_continues_a_full_fine_tune_from_its_directory(
    tmp_path: Path, tiny_model: Path, small_data: tuple[Path, Path]
) -> None:
    train_file, _ = small_data
    base = find_base_model(tmp_path, str(tiny_model), directory_ok=True)
    full_model = tmp_path / "full"  # a fully fine-tuned model: no adapter_config.json
    full_model.mkdir()
    config = resolve_job(
        "supervised",
        {"n_epochs": 1},
        base=base,
        training_file=train_file,
        validation_file=None,
        output_dir=tmp_path / "run",
        seed=3,
        init_adapter_path=str(full_model),
    )
    assert config.batch_size == min(PRETRAINED_DEFAULTS.batch_size, count_examples(train_file))
    assert (config.base_model_path, config.init_adapter_path) == (str(full_model), None)
    assert config.keep_last_n_checkpoints == KEEP_CHECKPOINTS
    assert config.layout == RunLayout(tmp_path / "run")


def test_the_layout_names_what_the_recipe_wrote(reference_run: ReferenceRun) -> None:
    layout = reference_run.config.layout
    steps_per_epoch = 6
    kept = sorted(layout.checkpoint_dirs(), key=step_of)
    # Four epochs of six steps: the newest KEEP_CHECKPOINTS epoch checkpoints stay.
    assert len(kept) == KEEP_CHECKPOINTS
    assert kept == [layout.checkpoint_dir(steps_per_epoch * epoch) for epoch in (2, 3, 4)]
    assert layout.latest_resumable() == layout.checkpoint_dir(24)
    assert all((path / STATE_FILE).is_file() and (path / CONFIG_FILE).is_file() for path in kept)
    assert str(layout.final_dir) == reference_run.result.final_path
    assert (layout.final_dir / CONFIG_FILE).is_file() and not (layout.final_dir / STATE_FILE).exists()
    assert layout.results_file.is_file()


def test_the_latest_resumable_checkpoint_skips_unfinished_ones(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path)
    assert layout.latest_resumable() is None
    unfinished = {"step-3": True, "step-12": True, "step-20": False, "step-30.partial": True}
    for name, with_state in unfinished.items():
        (layout.checkpoints_dir / name).mkdir(parents=True)
        if with_state:
            (layout.checkpoints_dir / name / STATE_FILE).write_bytes(b"")
    assert layout.latest_resumable() == layout.checkpoint_dir(12)  # 12 > 3 numerically, not as text


def test_the_spec_loads_no_recipe_library() -> None:
    code = (
        "import sys, openft.train.spec, openft.train.config; "
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
