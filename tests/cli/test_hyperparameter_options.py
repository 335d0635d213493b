"""`openft jobs create` checks hyperparameters before uploading; a refusal names the option to change."""

from __future__ import annotations

import pytest
import typer

from openft.cli.hyperparameters import check_hyperparameters


@pytest.mark.parametrize(
    ("values", "option"),
    [
        ({"n_epochs": 100}, "--n-epochs"),
        ({"learning_rate_multiplier": 1000.0}, "--learning-rate-multiplier"),
        ({"batch_size": 0}, "--batch-size"),
    ],
)
def test_a_refused_value_names_its_option(values: dict[str, object], option: str) -> None:
    with pytest.raises(typer.BadParameter) as caught:
        check_hyperparameters(values)
    assert caught.value.param_hint == option


@pytest.mark.parametrize(
    ("method", "values", "option"),
    [
        ("dpo", {"beta": 0.0}, "--beta"),
        ("dpo", {"sft_weight": 20.0}, "--sft-weight"),
        ("reinforcement", {"compute_multiplier": 11.0}, "--compute-multiplier"),
        ("reinforcement", {"eval_samples": 0}, "--eval-samples"),
        ("reinforcement", {"full_finetune": True}, "--full"),
    ],
)
def test_each_method_checks_its_own_hyperparameters(
    method: str, values: dict[str, object], option: str
) -> None:
    with pytest.raises(typer.BadParameter) as caught:
        check_hyperparameters(values, method)
    assert caught.value.param_hint == option


def test_a_hyperparameter_of_another_method_is_refused() -> None:
    with pytest.raises(typer.BadParameter, match="unknown hyperparameter"):
        check_hyperparameters({"beta": 0.5}, "supervised")
    check_hyperparameters({"beta": 0.5, "sft_weight": 0}, "dpo")


def test_accepted_values_pass() -> None:
    check_hyperparameters({"n_epochs": 3, "batch_size": "auto", "learning_rate_multiplier": 2.0})
