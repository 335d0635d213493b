"""Hyperparameters as command-line options: OpenAI's (each "auto" or a number) and each method's own."""

from __future__ import annotations

from typing import Any

import typer

# The options that take "auto" or a number, and the number's kind.
KINDS: dict[str, type[int] | type[float]] = {
    "n_epochs": int,
    "batch_size": int,
    "learning_rate_multiplier": float,
    "beta": float,
    "compute_multiplier": float,
    "eval_interval": int,
    "eval_samples": int,
}
# Hyperparameters whose option is not simply `--name-with-dashes`.
OPTION_NAMES = {"full_finetune": "--full"}
# Hyperparameters that `openft jobs create` has no option for: a refusal names no option.
NO_OPTION = {"max_seq_length"}


def auto_hyperparameters(**texts: str) -> dict[str, int | float | str]:
    """{"n_epochs": "3", ...} from the command line -> {"n_epochs": 3, ...}; "auto" (any case) stays."""
    return {name: _auto_or_number(name, text) for name, text in texts.items()}


def option_name(hyperparameter: str) -> str:
    return OPTION_NAMES.get(hyperparameter, "--" + hyperparameter.replace("_", "-"))


def _auto_or_number(name: str, text: str) -> int | float | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return KINDS[name](text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither 'auto' nor a number", param_hint=option_name(name)
        ) from None


def check_hyperparameters(values: dict[str, Any], method: str = "supervised") -> None:
    """The server's own range checks for the method (the job spec's), run here first: a job that would
    be refused must not upload its files, each retry leaving another orphan behind."""
    from openft.train.spec import HyperparameterError, JobMethod, parse_hyperparameters

    job_method: JobMethod = method  # type: ignore[assignment]  # the caller checked it is one
    try:
        parse_hyperparameters(job_method, values)
    except HyperparameterError as exc:
        name = exc.field
        hint = option_name(name) if name and name not in NO_OPTION else None
        raise typer.BadParameter(str(exc), param_hint=hint) from None
