"""Lean norms, MLPs and linear layers: the stock loss and gradients, with far less kept for backward."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import torch

from openft.train.examples import TokenizedExample
from openft.train.lean_layers import lean_layers
from openft.train.loss import TokenLoss
from openft.train.packing import pack, packed_attention_enabled

VOCAB = 300


def _llama() -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=160,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        dtype="float32",
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def _batch() -> Any:
    gen = torch.Generator().manual_seed(1)
    examples = []
    for n_tokens in (40, 57, 31):
        ids = torch.randint(0, VOCAB, (n_tokens,), generator=gen).tolist()
        examples.append(TokenizedExample(ids, [0] * 10 + [1] * (n_tokens - 10)))
    return pack(examples)


def _autocast(bf16: bool) -> Any:
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()


def _forward_backward(
    model: Any, forward_context: Any, *, bf16: bool
) -> tuple[float, dict[str, torch.Tensor], int]:
    """Loss, gradients of the trained parameters and the bytes autograd kept for backward (activations
    only, not parameters), for one packed batch under `forward_context`."""
    model.zero_grad(set_to_none=True)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, int] = {}

    def keep(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            kept[storage.data_ptr()] = storage.nbytes()
        return t

    loss_module = TokenLoss(model, packed=True)
    with forward_context, packed_attention_enabled(model):
        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t), _autocast(bf16):
            loss, _ = loss_module(_batch())
        loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}
    return loss.item(), grads, sum(kept.values())


def _step(model: Any, *, lean: bool, bf16: bool) -> tuple[float, dict[str, torch.Tensor], int]:
    return _forward_backward(model, lean_layers(model, enabled=lean), bf16=bf16)


def test_lean_layers_give_the_stock_loss_and_gradients_in_fp32_and_keep_less_for_backward() -> None:
    model = _llama()
    stock_loss, stock_grads, stock_kept = _step(model, lean=False, bf16=False)
    lean_loss, lean_grads, lean_kept = _step(model, lean=True, bf16=False)
    assert lean_loss == pytest.approx(stock_loss, rel=1e-6)
    for name, grad in stock_grads.items():
        scale = grad.abs().max().item()
        assert scale > 0, name  # every weight gets a gradient, so the comparison means something
        assert (lean_grads[name] - grad).abs().max().item() <= 1e-5 * scale, name
    # The norms' fp32 outputs, silu(gate) and its product with up are no longer kept.
    assert lean_kept < 0.75 * stock_kept, (lean_kept, stock_kept)


def test_under_bf16_autocast_lean_gradients_are_as_close_to_fp32_as_the_stock_ones() -> None:
    """Same products in bf16; only fp32 rounding differs (the norm's backward is one formula, not
    autograd's chain), which can move a value across a bf16 rounding boundary now and then."""
    model = _llama()
    _, exact, _ = _step(model, lean=False, bf16=False)
    stock_loss, stock_grads, stock_kept = _step(model, lean=False, bf16=True)
    lean_loss, lean_grads, lean_kept = _step(model, lean=True, bf16=True)
    assert lean_loss == pytest.approx(stock_loss, rel=1e-4)
    for name, reference in exact.items():
        size = reference.norm().item()
        stock_error = (stock_grads[name] - reference).norm().item()
        assert (lean_grads[name] - stock_grads[name]).norm().item() <= 2e-3 * size, name
        assert (lean_grads[name] - reference).norm().item() <= 1.1 * stock_error + 1e-6 * size, name
    # Also no bf16 weight copies, and one cast of an input that q, k and v (or gate and up) share.
    assert lean_kept < 0.6 * stock_kept, (lean_kept, stock_kept)


def test_lean_layers_are_installed_on_norms_mlps_and_trained_linears_and_removed_after() -> None:
    model = _llama()
    layer = model.model.layers[0]
    with lean_layers(model) as replaced:
        # Per layer 2 norms, the MLP and its 3 linears, 4 attention linears; the final norm; the output layer.
        assert replaced == 2 * 10 + 1 + 1
        assert "forward" in vars(layer.mlp) and "forward" in vars(layer.input_layernorm)
        assert "forward" in vars(layer.self_attn.q_proj)
    assert not any("forward" in vars(module) for module in model.modules())


def test_frozen_linears_and_adapted_models_keep_their_own_forward() -> None:
    model = _llama()
    for param in model.model.layers[1].self_attn.parameters():
        param.requires_grad_(False)
    with lean_layers(model) as replaced:
        assert "forward" not in vars(model.model.layers[1].self_attn.q_proj)
        assert replaced == 2 * 10 + 1 + 1 - 4
    model.peft_config = {}  # what marks a PEFT model: its adapters own the forward
    with lean_layers(model) as replaced:
        assert replaced == 0


def test_a_norm_given_bf16_input_computes_what_the_stock_norm_does() -> None:
    model = _llama()
    norm = model.model.layers[0].input_layernorm
    torch.manual_seed(2)
    norm.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(3, 64)
    with lean_layers(model):
        assert torch.equal(norm(x.bfloat16()), type(norm).forward(norm, x.bfloat16()))
        assert torch.allclose(norm(x), type(norm).forward(norm, x), rtol=1e-6, atol=1e-6)


def _lora_step(model: Any, *, fused: bool, bf16: bool) -> tuple[dict[str, torch.Tensor], int]:
    from openft.train.fused_lora import fused_lora_forward

    _, grads, kept = _forward_backward(model, fused_lora_forward(model, enabled=fused), bf16=bf16)
    return grads, kept


def test_fused_lora_under_bf16_autocast_keeps_no_weight_copies_and_computes_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from peft import LoraConfig, get_peft_model

    import openft.train.fused_lora as fused_lora

    model = get_peft_model(_llama(), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    with torch.no_grad():  # B starts at zero; give the adapters something to add
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05)
    lean_grads, lean_kept = _lora_step(model, fused=True, bf16=True)
    # The fused forward as it was: autocast casts x and the base weight for each product.
    monkeypatch.setattr(fused_lora, "compute_dtype", lambda x: x.dtype)
    plain_grads, plain_kept = _lora_step(model, fused=True, bf16=True)
    assert len(plain_grads) == 2 * 7 * 2  # A and B of every linear layer of both decoder layers
    for name, grad in plain_grads.items():
        assert grad.abs().max().item() > 0, name
        torch.testing.assert_close(lean_grads[name], grad, rtol=1e-5, atol=1e-7)
    # No bf16 copies of the frozen base weights; one bf16 copy of each shared input.
    assert lean_kept < 0.8 * plain_kept, (lean_kept, plain_kept)


def test_lean_layers_survive_switching_between_train_and_eval(tiny_model: Path) -> None:
    """A DPO run scores its reference in eval mode, then trains: the lean forwards must stay (and be
    removed cleanly after), which transformers' hub-kernel re-kernelization would undo."""
    from openft.train.adapters import load_base_model

    model = load_base_model(tiny_model)
    norm = model.model.layers[0].input_layernorm
    with lean_layers(model):
        model.eval()
        model.train()
        assert "forward" in vars(norm) and "forward" in vars(model.model.layers[0].mlp)
    assert not any("forward" in vars(module) for module in model.modules())


def _lora_llama() -> Any:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_llama(), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    with torch.no_grad():  # B starts at zero; give the adapters something to add
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05)
    return model


def test_frozen_base_weights_stored_in_bf16_give_the_same_loss_and_gradients() -> None:
    from openft.train.frozen_weights import store_frozen_linear_weights

    model = _lora_llama()
    loss, grads, _ = _forward_backward(model, _fused(model), bf16=True)

    assert store_frozen_linear_weights(model, torch.bfloat16) == 2 * 7 + 1  # the base layers and lm_head
    base = model.base_model.model
    assert base.model.layers[0].self_attn.q_proj.base_layer.weight.dtype == torch.bfloat16
    assert base.model.embed_tokens.weight.dtype == torch.float32  # starts the fp32 residual stream
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)

    low_loss, low_grads, _ = _forward_backward(model, _fused(model), bf16=True)
    assert low_loss == loss
    for name, grad in grads.items():
        torch.testing.assert_close(low_grads[name], grad, rtol=0, atol=0)


def _fused(model: Any) -> Any:
    from openft.train.fused_lora import fused_lora_forward

    return fused_lora_forward(model)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads Linux's memory maps")
def test_storing_frozen_weights_low_releases_the_checkpoint_file(tiny_model: Path) -> None:
    from peft import LoraConfig, get_peft_model

    from openft.train.adapters import load_base_model
    from openft.train.frozen_weights import store_frozen_linear_weights

    def mapped() -> bool:
        return str(tiny_model.resolve()) in Path("/proc/self/maps").read_text()

    model = get_peft_model(load_base_model(tiny_model), LoraConfig(r=4, target_modules="all-linear"))
    assert mapped()  # the weights are views of the file
    assert store_frozen_linear_weights(model, torch.bfloat16) > 0
    assert not mapped()  # nothing refers to the fp32 originals any more
