"""`openft models ...` against a real data directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openft.cli.models import models_app

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPENFT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data"


def test_list_shows_the_builtins(data_dir: Path) -> None:
    result = runner.invoke(models_app, ["list"])
    assert result.exit_code == 0, result.output
    assert "openft-tiny" in result.output and "openft-small" in result.output
    assert "built on first use" in result.output


def test_add_list_remove(data_dir: Path, tiny_dir: Path) -> None:
    result = runner.invoke(models_app, ["add", "mine", str(tiny_dir)])
    assert result.exit_code == 0, result.output
    assert "Registered mine" in result.output
    stored = json.loads((data_dir / "models" / "catalog.json").read_text())
    assert stored["models"]["mine"]["path"] == str(tiny_dir)
    listing = runner.invoke(models_app, ["list"]).output.splitlines()
    row = next(line for line in listing if line.startswith("│ mine "))
    assert "2.0M" in row  # the parameter count of a local model, from its safetensors header
    result = runner.invoke(models_app, ["remove", "mine"])
    assert result.exit_code == 0, result.output
    assert "mine" not in runner.invoke(models_app, ["list"]).output


def test_errors_exit_non_zero_with_the_reason(data_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(models_app, ["add", "mine", str(tmp_path / "nowhere")])
    assert result.exit_code == 2  # a path that is no model: bad input
    assert "is not a directory" in result.output
    result = runner.invoke(models_app, ["remove", "nothing"])
    assert result.exit_code == 1
    assert "not in the catalog" in result.output
    result = runner.invoke(models_app, ["build", "nothing"])
    assert result.exit_code == 1
    assert "not a built-in model" in result.output


def test_build_makes_a_builtin_ready(data_dir: Path) -> None:
    result = runner.invoke(models_app, ["build", "openft-tiny"])
    assert result.exit_code == 0, result.output
    assert (data_dir / "models" / "openft-tiny" / "model.safetensors").is_file()
    listing = runner.invoke(models_app, ["list"]).output
    assert listing.count("built on first use") == 1  # only openft-small is left to build
