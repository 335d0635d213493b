"""A run whose loss or gradients stopped being numbers: it stops, and says what to change.

A too-high learning rate makes the weights overflow within a step or two; from then on every loss is
NaN, yet the run would go on to the end and publish the broken weights as the fine-tuned model. The
recipe checks each step's loss and gradient norm, and the weights before every checkpoint, and raises
`TrainingDiverged` instead. Torch-free, so that the process entry can catch it before torch loads.
"""

from __future__ import annotations

import math

DIVERGED_CODE = "training_diverged"
DIVERGED_PARAM = "hyperparameters.learning_rate_multiplier"


class TrainingDiverged(ValueError):
    """Training produced a non-finite number at `step`; the message says what to lower. A ValueError:
    like a bad config, it is the input (the learning rate) that has to change."""

    code = DIVERGED_CODE
    param = DIVERGED_PARAM

    def __init__(self, step: int, what: str, *, learning_rate_multiplier: float, learning_rate: float):
        self.step = step
        super().__init__(
            f"Training diverged at step {step}: {what} is not a finite number, so the run was stopped "
            "and no model was published. Lower hyperparameters.learning_rate_multiplier (this run used "
            f"{learning_rate_multiplier:g}, a learning rate of {learning_rate:g}) and create a new job."
        )


def first_non_finite(values: dict[str, float]) -> str | None:
    """The name of the first value that is NaN or infinite, or None when all are finite."""
    for name, value in values.items():
        if not math.isfinite(value):
            return f"the {name} ({value})"
    return None
