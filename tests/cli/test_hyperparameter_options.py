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


def test_accepted_values_pass() -> None:
    check_hyperparameters({"n_epochs": 3, "batch_size": "auto", "learning_rate_multiplier": 2.0})
