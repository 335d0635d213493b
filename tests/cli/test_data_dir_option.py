"""Every command that works on the local data dir takes `--data-dir` (over OPENFT_DATA_DIR): one option."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from openft.cli.main import app

FIXTURES = Path(__file__).parents[1] / "data" / "fixtures"
DATA_DIR_COMMANDS = {
    "serve",
    "worker",
    "eval",
    "export",
    "keys create",
    "keys list",
    "keys revoke",
    "models list",
    "models add",
    "models remove",
    "models build",
    "data check",
    "experiment data-scaling",
}


def _commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every command under `group` by its full name (typer's groups and commands: its own click)."""
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found |= _commands(command, f"{prefix}{name} ")
        else:
            found[prefix + name] = command
    return found


def test_every_data_dir_command_has_the_same_option() -> None:
    commands = _commands(typer.main.get_group(app))
    with_data_dir = {}
    for name, command in commands.items():
        for param in command.params:
            if param.name == "data_dir":
                with_data_dir[name] = param
    assert set(with_data_dir) == DATA_DIR_COMMANDS
    for name, param in with_data_dir.items():
        assert (param.opts, param.envvar) == (["--data-dir"], "OPENFT_DATA_DIR"), name


def test_models_add_and_list_use_the_data_dir_option_over_the_environment(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    env = {"OPENFT_DATA_DIR": str(tmp_path / "from-env"), "COLUMNS": "200"}
    chosen = tmp_path / "chosen"
    added = CliRunner().invoke(
        app, ["models", "add", "mine", str(tiny_model_dir), "--data-dir", str(chosen)], env=env
    )
    assert added.exit_code == 0, added.output
    catalog = json.loads((chosen / "models" / "catalog.json").read_text())
    assert catalog["models"]["mine"]["path"] == str(tiny_model_dir)
    assert not (tmp_path / "from-env").exists()
    listed = CliRunner().invoke(app, ["models", "list", "--data-dir", str(chosen)], env=env)
    assert listed.exit_code == 0 and "mine" in listed.output
    removed = CliRunner().invoke(app, ["models", "remove", "mine", "--data-dir", str(chosen)], env=env)
    assert removed.exit_code == 0, removed.output
    assert "mine" not in json.loads((chosen / "models" / "catalog.json").read_text())["models"]


def test_data_check_finds_its_model_in_the_data_dir_option(tmp_path: Path, tiny_model_dir: Path) -> None:
    chosen = tmp_path / "chosen"
    (chosen / "models").mkdir(parents=True)
    (chosen / "models" / tiny_model_dir.name).symlink_to(tiny_model_dir)
    env = {"OPENFT_DATA_DIR": str(tmp_path / "from-env")}
    args = ["data", "check", str(FIXTURES / "marv.jsonl"), "--no-estimate-time", "--data-dir", str(chosen)]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "from-env").exists()  # openft-tiny was not built again under the environment's dir
