"""The "auto" epoch rule with OpenAI's constants, and the trained-token and time estimate."""

from __future__ import annotations

import pytest

from openft.data import TrainingEstimate, auto_epochs, estimate_training


@pytest.mark.parametrize(
    ("n_examples", "n_epochs"),
    [
        (1, 25),
        (3, 25),
        (4, 25),
        (5, 20),
        (10, 10),
        (33, 3),
        (34, 3),
        (100, 3),
        (8333, 3),
        (8334, 2),
        (10_000, 2),
        (25_001, 1),
    ],
)
def test_auto_epochs(n_examples: int, n_epochs: int) -> None:
    assert auto_epochs(n_examples) == n_epochs


def test_auto_epochs_needs_an_example() -> None:
    with pytest.raises(ValueError, match="at least one example"):
        auto_epochs(0)


def test_the_cookbook_example_is_reproduced() -> None:
    # The notebook's output: 5 examples, 4306 billing tokens, 20 epochs, ~86120 charged tokens.
    assert estimate_training(5, 4306) == TrainingEstimate(20, 4306, 86_120, None, None)


def test_given_epochs_and_a_measured_speed_give_a_time() -> None:
    assert estimate_training(100, 1000, n_epochs=2, tokens_per_s=400.0) == TrainingEstimate(
        2, 1000, 2000, 400.0, 5.0
    )
