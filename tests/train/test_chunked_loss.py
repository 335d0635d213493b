"""Chunked loss: the same loss, hits and gradients as the plain output layer + cross-entropy."""

from __future__ import annotations

from contextlib import nullcontext
from functools import partial
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from openft.train.chunked_loss import LossWorkspace, chunked_cross_entropy
from openft.train.examples import TokenizedExample
from openft.train.loss import TokenLoss, _plain_output_layer
from openft.train.packing import IGNORED_TARGET, pack, packed_attention_enabled

VOCAB, HIDDEN, N = 300, 24, 10


def _bf16() -> Any:
    return torch.autocast("cpu", dtype=torch.bfloat16)


def _inputs(seed: int = 0, *, with_bias: bool = True) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(N, HIDDEN, generator=gen, requires_grad=True)
    weight = (torch.randn(VOCAB, HIDDEN, generator=gen) * 0.3).requires_grad_()
    bias = (torch.randn(VOCAB, generator=gen) * 0.1).requires_grad_() if with_bias else None
    targets = torch.randint(0, VOCAB, (N,), generator=gen)
    targets[[3, 9]] = IGNORED_TARGET  # padding, one of them at the end
    return hidden, weight, bias, targets  # type: ignore[return-value]


def _plain(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor
) -> Any:
    logits = F.linear(hidden, weight, bias).float()
    loss = F.cross_entropy(logits, targets, reduction="sum", ignore_index=IGNORED_TARGET)
    return loss, (logits.detach().argmax(dim=-1) == targets).sum()


def _assert_close(got: torch.Tensor, want: torch.Tensor, rtol: float, atol: float, name: str = "") -> None:
    if rtol <= 1e-5:  # fp32: the same numbers up to summation order
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol, msg=name)
        return
    # bf16: the plain path rounds the output weight's gradient to bf16 where the chunked one sums in fp32,
    # so elements differ by bf16 rounding; compare the tensors as a whole.
    assert ((got - want).norm() / want.norm().clamp_min(1e-12)).item() < rtol, name


def _loss_and_grads(fn: Any, inputs: tuple[torch.Tensor, ...], autocast: Any) -> tuple[Any, ...]:
    hidden, weight, bias, targets = (t.detach().clone().requires_grad_(t.requires_grad) for t in inputs)
    with autocast():
        loss, hits = fn(hidden, weight, bias, targets)
    (loss * 0.37).backward()  # a scaled loss, as the training step's is
    return loss.item(), hits.item(), hidden.grad, weight.grad, None if bias is None else bias.grad


@pytest.mark.parametrize("chunk_size", [1, 3, N - 1, N, N + 1, 1024])
@pytest.mark.parametrize(("autocast", "rtol", "atol"), [(nullcontext, 1e-5, 1e-6), (_bf16, 1e-2, 0.0)])
def test_loss_hits_and_gradients_match_the_plain_computation(
    chunk_size: int, autocast: Any, rtol: float, atol: float
) -> None:
    inputs = _inputs()
    plain = _loss_and_grads(_plain, inputs, autocast)
    chunked = _loss_and_grads(
        lambda h, w, b, t: chunked_cross_entropy(h, w, b, t, chunk_size=chunk_size), inputs, autocast
    )
    assert chunked[0] == pytest.approx(plain[0], rel=rtol)
    assert chunked[1] == plain[1]
    for got, want in zip(chunked[2:], plain[2:], strict=True):
        assert got.dtype == want.dtype == torch.float32
        _assert_close(got, want, rtol, atol)
    # Padded targets get no gradient.
    assert chunked[2][[3, 9]].abs().max().item() == 0.0


def test_under_bf16_the_output_layer_multiplies_in_bf16() -> None:
    """Under autocast the chunked loss is the bf16 one, not a more precise fp32 one."""
    inputs = _inputs(with_bias=False)
    with _bf16():
        chunked = chunked_cross_entropy(*inputs, chunk_size=4)[0].item()
        bf16 = _plain(*inputs)[0].item()
    fp32 = _plain(*inputs)[0].item()
    assert chunked == pytest.approx(bf16, rel=1e-5)
    assert chunked != pytest.approx(fp32, rel=1e-6)


def test_without_gradients_nothing_is_kept_and_frozen_weights_get_none() -> None:
    hidden, weight, _, targets = _inputs(with_bias=False)
    with torch.no_grad():
        loss, _ = chunked_cross_entropy(hidden, weight, None, targets, chunk_size=4)
    assert loss.grad_fn is None and loss.item() > 0
    weight.requires_grad_(False)  # LoRA: the output layer is frozen
    loss, _ = chunked_cross_entropy(hidden, weight, None, targets, chunk_size=4)
    loss.backward()
    assert weight.grad is None and hidden.grad is not None


def test_no_trained_positions_gives_zero_loss_and_zero_gradients() -> None:
    hidden = torch.zeros(0, HIDDEN, requires_grad=True)
    weight = torch.randn(VOCAB, HIDDEN, requires_grad=True)
    loss, hits = chunked_cross_entropy(hidden, weight, None, torch.zeros(0, dtype=torch.long), chunk_size=4)
    loss.backward()
    assert (loss.item(), hits.item()) == (0.0, 0)
    assert weight.grad is not None and weight.grad.abs().max().item() == 0.0


@pytest.mark.parametrize(("autocast", "rtol"), [(nullcontext, 1e-5), (_bf16, 1e-2)])
def test_a_kept_workspace_gives_the_results_of_a_fresh_one(autocast: Any, rtol: float) -> None:
    """One workspace through calls of growing and shrinking size: every call's loss, hits and
    gradients are those of a call with a workspace of its own."""
    workspace = LossWorkspace()
    for seed, n_rows, chunk_size in [(0, N, 4), (1, 3, 4), (2, N, N), (3, N, 3)]:
        inputs = tuple(t[:n_rows] if t.dim() and t.shape[0] == N else t for t in _inputs(seed))
        fresh = _loss_and_grads(partial(chunked_cross_entropy, chunk_size=chunk_size), inputs, autocast)
        kept = _loss_and_grads(
            partial(chunked_cross_entropy, chunk_size=chunk_size, workspace=workspace), inputs, autocast
        )
        assert kept[:2] == fresh[:2]
        for got, want in zip(kept[2:], fresh[2:], strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_a_frozen_output_weight_is_cast_once_and_again_after_it_changes() -> None:
    hidden, weight, _, targets = _inputs(with_bias=False)
    weight = weight.detach()  # frozen, as a LoRA run's output layer
    workspace = LossWorkspace()

    def loss(w: torch.Tensor) -> float:
        with _bf16():
            loss_sum, _ = chunked_cross_entropy(hidden, w, None, targets, chunk_size=4, workspace=workspace)
        return loss_sum.item()

    first = loss(weight)
    cast = workspace.cast(weight, torch.bfloat16)
    assert loss(weight) == first and workspace.cast(weight, torch.bfloat16) is cast  # kept
    with torch.no_grad():
        weight.mul_(2.0)  # changed in place (a loaded state dict, say): cast again
    with _bf16():
        want = chunked_cross_entropy(hidden, weight, None, targets, chunk_size=4)[0].item()
    assert loss(weight) == want != first
    trained = weight.clone().requires_grad_()
    assert workspace.cast(trained, torch.bfloat16) is not workspace.cast(trained, torch.bfloat16)


def _llama(*, tie: bool) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=tie,
        dtype="float32",
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def _packed_batch(pad_to_multiple: int = 1) -> Any:
    gen = torch.Generator().manual_seed(1)
    examples = []
    for n_tokens in (9, 14, 6):
        ids = torch.randint(0, VOCAB, (n_tokens,), generator=gen).tolist()
        examples.append(TokenizedExample(ids, [0] * 3 + [1] * (n_tokens - 3)))
    return pack(examples, pad_to_multiple=pad_to_multiple)


def _model_loss_and_grads(model: Any, chunk_size: int | None, autocast: Any, batch: Any) -> Any:
    model.zero_grad(set_to_none=True)
    loss_module = TokenLoss(model, packed=True, chunk_size=chunk_size)
    with packed_attention_enabled(model), autocast():
        loss, hits = loss_module(batch)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss.item(), hits.item(), grads


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize(
    ("autocast", "pad", "rtol", "atol"), [(nullcontext, 1, 1e-5, 1e-6), (_bf16, 8, 1e-2, 0.0)]
)
def test_full_fine_tuning_on_packed_rows_matches_the_models_own_logits(
    tie: bool, autocast: Any, pad: int, rtol: float, atol: float
) -> None:
    model = _llama(tie=tie)
    batch = _packed_batch(pad)
    assert _plain_output_layer(model) is model.lm_head
    plain = _model_loss_and_grads(model, None, autocast, batch)
    chunked = _model_loss_and_grads(model, 4, autocast, batch)  # 4 does not divide the 23 trained positions
    assert chunked[0] == pytest.approx(plain[0], rel=rtol)
    assert chunked[1] == plain[1]
    assert chunked[2].keys() == plain[2].keys()
    assert "lm_head.weight" in chunked[2] or tie
    for name, grad in plain[2].items():
        _assert_close(chunked[2][name], grad, rtol, atol, name)


def test_lora_gradients_match_and_an_adapted_output_layer_keeps_the_models_path() -> None:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_llama(tie=False), LoraConfig(r=4, target_modules="all-linear", lora_dropout=0.0))
    batch = _packed_batch()
    assert _plain_output_layer(model) is model.get_base_model().lm_head
    plain = _model_loss_and_grads(model, None, nullcontext, batch)
    chunked = _model_loss_and_grads(model, 5, nullcontext, batch)
    assert chunked[0] == pytest.approx(plain[0], rel=1e-5)
    assert chunked[2] and all("lora_" in name for name in chunked[2])
    for name, grad in plain[2].items():
        torch.testing.assert_close(chunked[2][name], grad, rtol=1e-5, atol=1e-6, msg=name)

    adapted_head = get_peft_model(_llama(tie=False), LoraConfig(r=4, target_modules=["lm_head"]))
    assert _plain_output_layer(adapted_head) is None
    softcapped = _llama(tie=False)
    softcapped.config.final_logit_softcapping = 30.0
    assert _plain_output_layer(softcapped) is None
