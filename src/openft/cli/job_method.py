"""`openft jobs create --method ...`: the request's `method` object (supervised, dpo or reinforcement),
built from the command's options and checked as the server will check it, before any file is uploaded.

Every refusal is a usage error (exit status 2) that names the option to change.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import typer

from openft.cli.hyperparameters import KINDS, auto_hyperparameters, check_hyperparameters, option_name


@dataclass(frozen=True)
class MethodOptions:
    """The options of `jobs create` that belong to one method (OWNERS); None: not given."""

    beta: str | None = None
    sft_weight: float | None = None
    grader: Path | None = None
    response_format: Path | None = None
    compute_multiplier: str | None = None
    eval_interval: str | None = None
    eval_samples: str | None = None
    reasoning_effort: str | None = None


OWNERS: dict[str, str] = {
    "beta": "dpo",
    "sft_weight": "dpo",
    "grader": "reinforcement",
    "response_format": "reinforcement",
    "compute_multiplier": "reinforcement",
    "eval_interval": "reinforcement",
    "eval_samples": "reinforcement",
    "reasoning_effort": "reinforcement",
}
# The options that are JSON files in the request rather than hyperparameters.
FILE_OPTIONS = ("grader", "response_format")


def method_request(method: str, hyperparameters: dict[str, Any], options: MethodOptions) -> dict[str, Any]:
    """`{"type": method, method: {"hyperparameters": ..., ...}}`, with the method's own options added to
    the common `hyperparameters` and checked against the method's ranges."""
    from openft.train.spec import JOB_METHODS

    if method not in JOB_METHODS:
        raise typer.BadParameter(f"{method!r} is not one of {', '.join(JOB_METHODS)}", param_hint="--method")
    given = {name: value for name, value in asdict(options).items() if value is not None}
    _require_own_options(method, given)
    files = {name: given.pop(name) for name in FILE_OPTIONS if name in given}
    auto_or_number = {name: given.pop(name) for name in list(given) if name in KINDS}
    hyperparameters = hyperparameters | auto_hyperparameters(**auto_or_number) | given
    check_hyperparameters(hyperparameters, method)
    body: dict[str, Any] = {"hyperparameters": hyperparameters}
    if method == "reinforcement":
        body["grader"] = _checked_grader(files["grader"])
        if "response_format" in files:
            body["response_format"] = _json_object(files["response_format"], "--response-format")
    return {"type": method, method: body}


def _require_own_options(method: str, given: dict[str, Any]) -> None:
    for name in given:
        if OWNERS[name] != method:
            raise typer.BadParameter(f"{option_name(name)} needs --method {OWNERS[name]}")
    if method == "reinforcement" and "grader" not in given:
        raise typer.BadParameter(
            "--method reinforcement needs --grader: a JSON file with the grader that scores the answers"
        )


def _checked_grader(path: Path) -> dict[str, Any]:
    """The grader file's object, checked as the server checks a reinforcement job's grader (the server
    checks it again, with what only it knows: its judge models, its embedding model)."""
    from openft.graders.validate import GraderConfigError, validate_grader

    grader = _json_object(path, "--grader")
    try:
        validate_grader(grader, for_reinforcement=True)
    except GraderConfigError as exc:
        where = f" (at {exc.field})" if exc.field else ""
        raise typer.BadParameter(
            f"{path}: invalid grader{where}: {exc.message}", param_hint="--grader"
        ) from None
    return grader


def _json_object(path: Path, option: str) -> dict[str, Any]:
    try:
        value = json.loads(path.expanduser().read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise typer.BadParameter(f"{path}: no such file", param_hint=option) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise typer.BadParameter(f"{path} is not a JSON file: {exc}", param_hint=option) from None
    if not isinstance(value, dict):
        raise typer.BadParameter(f"{path} must hold one JSON object", param_hint=option)
    return value
