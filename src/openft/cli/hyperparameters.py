"""OpenAI's three hyperparameters as command-line options: each "auto" or a number."""

from __future__ import annotations

from typing import Any

import typer

KINDS: dict[str, type[int] | type[float]] = {
    "n_epochs": int,
    "batch_size": int,
    "learning_rate_multiplier": float,
}


def auto_hyperparameters(**texts: str) -> dict[str, int | float | str]:
    """{"n_epochs": "3", ...} from the command line -> {"n_epochs": 3, ...}; "auto" (any case) stays."""
    return {name: _auto_or_number(name, text) for name, text in texts.items()}


def _auto_or_number(name: str, text: str) -> int | float | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return KINDS[name](text)
    except ValueError:
        option = "--" + name.replace("_", "-")
        raise typer.BadParameter(f"{text!r} is neither 'auto' nor a number", param_hint=option) from None


def check_hyperparameters(values: dict[str, Any]) -> None:
    """The server's own range checks (the job spec's), run here first: a job that would be refused
    must not upload its files, each retry leaving another orphan behind."""
    from openft.train.spec import HyperparameterError, SupervisedHyperparameters

    try:
        SupervisedHyperparameters(**values)
    except HyperparameterError as exc:
        name = exc.field
        hint = "--" + name.replace("_", "-") if name in KINDS or name == "lora_rank" else None
        raise typer.BadParameter(str(exc), param_hint=hint) from None
