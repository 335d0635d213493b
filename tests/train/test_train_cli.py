"""`openft train`: the recipe from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from openft.cli.train import train

pytestmark = pytest.mark.slow


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(train)
    app.command("noop")(lambda: None)  # two commands, so `train` is invoked by name as in `openft train`
    return app


def test_train_a_builtin_model_from_the_command_line(tmp_path: Path, small_data: tuple[Path, Path]) -> None:
    train_file, valid_file = small_data
    out = tmp_path / "out"
    args = [
        "train", "--model", "openft-tiny", "--models-dir", str(tmp_path / "models"),
        "--training-file", str(train_file), "--validation-file", str(valid_file),
        "--n-epochs", "1", "--batch-size", "8", "--lora-rank", "4", "--seed", "3", "--output", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "done." in result.output
    assert (out / "final" / "adapter_model.safetensors").is_file()
    config = json.loads((out / "final" / "openft_config.json").read_text())
    assert (config["method"], config["lora_rank"], config["n_epochs"], config["seed"]) == ("lora", 4, 1, 3)


def test_bad_options_explain_themselves(tmp_path: Path, small_data: tuple[Path, Path]) -> None:
    train_file, _ = small_data
    base = [
        "train",
        "--model",
        "openft-tiny",
        "--models-dir",
        str(tmp_path),
        "--training-file",
        str(train_file),
    ]
    both = CliRunner().invoke(_app(), [*base, "--output", str(tmp_path / "o"), "--full", "--lora-rank", "4"])
    assert both.exit_code == 1 and "exclude each other" in both.output
    word = CliRunner().invoke(_app(), [*base, "--output", str(tmp_path / "o"), "--n-epochs", "many"])
    assert word.exit_code == 2 and "neither 'auto' nor a number" in word.output
    missing = CliRunner().invoke(_app(), ["train", "--model", "openft-tiny"])
    assert missing.exit_code == 1 and "required" in missing.output
