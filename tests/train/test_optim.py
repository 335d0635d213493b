"""The learning-rate schedule (warmup, then a linear fall that still trains on the last step) and
gradient clipping folded into the fused AdamW step."""

from __future__ import annotations

import math

import pytest
import torch

from openft.train.config import SFTConfig
from openft.train.optim import clip_gradients, make_scheduler


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


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4, bias=False))
    model[0].bias.requires_grad_(False)  # a frozen parameter: not in the norm, not stepped
    return model


def _set_gradients(model: torch.nn.Module, size: float, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.randn(p.shape, generator=generator) * size


@pytest.mark.parametrize("fused", [True, False])
def test_clipping_in_the_step_updates_as_clip_grad_norm_does(fused: bool) -> None:
    ours, theirs = _model(), _model()
    ours_optimizer = torch.optim.AdamW(ours.parameters(), lr=0.1, fused=fused)
    theirs_optimizer = torch.optim.AdamW(theirs.parameters(), lr=0.1, fused=fused)
    # Clipped, then under the limit: Adam's first update does not depend on the gradients' scale, so
    # only the second step shows whether the first one's moments were clipped.
    for seed, size, clipped in ((1, 10.0, True), (2, 0.01, False)):
        _set_gradients(ours, size, seed)
        _set_gradients(theirs, size, seed)
        before = [p.grad.clone() for p in ours.parameters() if p.grad is not None]
        norm = clip_gradients(ours_optimizer, ours, max_norm=1.0)
        expected = torch.nn.utils.clip_grad_norm_([p for p in theirs.parameters() if p.requires_grad], 1.0)
        assert norm == pytest.approx(float(expected), rel=1e-6)
        assert (norm > 1.0) == clipped
        if fused:  # no pass over the gradients: the step scales them as it reads them
            after = [p.grad for p in ours.parameters() if p.grad is not None]
            assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
        ours_optimizer.step()
        theirs_optimizer.step()
        for mine, reference in zip(ours.parameters(), theirs.parameters(), strict=True):
            torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-6)  # steps of 0.1
    assert not torch.equal(ours[1].weight, _model()[1].weight)  # it moved


def test_a_non_finite_norm_is_returned_and_nothing_is_scaled() -> None:
    model = _model()
    _set_gradients(model, 1.0, seed=1)
    model[1].weight.grad[0, 0] = math.inf
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, fused=True)
    assert clip_gradients(optimizer, model, max_norm=1.0) == math.inf
    assert optimizer.grad_scale is None  # type: ignore[attr-defined]
