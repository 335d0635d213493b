"""The learning-rate schedule: warmup, then a linear fall that still trains on the last step."""

from __future__ import annotations

import pytest
import torch

from openft.train.config import SFTConfig
from openft.train.optim import make_scheduler


@pytest.mark.parametrize("total_steps", [1, 2, 3, 10])
def test_the_schedule_steps_past_the_end_of_any_run(total_steps: int) -> None:
    # A one-step run is all warmup; the recipe still steps the scheduler after its last step.
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    config = SFTConfig.__new__(SFTConfig)  # the schedule reads only warmup_ratio
    config.warmup_ratio = 0.1
    scheduler = make_scheduler(optimizer, config, total_steps)
    rates = []
    for _ in range(total_steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert all(rate > 0 for rate in rates)
    assert optimizer.param_groups[0]["lr"] == 0.0  # past the end
