"""bf16 products for float32 models: the arithmetic, the bounded set of shapes, the layers converted,
and the engine using them where "auto" picks them (with LoRA adapters on top)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from openft.inference import weights as weights_module
from openft.inference.bf16_products import SMALL_ROWS, Bf16Linear, bf16_linear, row_bucket, use_bf16_products
from openft.inference.config import EngineConfig
from openft.inference.lora import LoraSet
from openft.inference.types import EngineStats
from openft.inference.weights import WeightCache


def _model(path: Path) -> nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()


def test_rows_are_padded_to_few_buckets() -> None:
    assert [row_bucket(n) for n in (1, 2, 3, 5, 8, 9, 32)] == [1, 2, 4, 8, 8, 16, 32]
    assert [row_bucket(n) for n in (33, 48, 49, 64, 65, 97, 1000)] == [48, 48, 64, 64, 96, 128, 1024]
    for n in range(1, 5000):
        assert n <= row_bucket(n) <= max(2 * n, 1)
        if n > SMALL_ROWS:
            assert row_bucket(n) <= 1.5 * n + 1
    # Every prompt length up to 4,999 tokens meets one of a few dozen shapes, not thousands.
    assert len({row_bucket(n) for n in range(1, 5000)}) < 30


def test_a_bf16_product_is_the_float32_product_of_bf16_rounded_operands() -> None:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(24, 40, generator=generator)
    bias = torch.randn(24, generator=generator)
    layer = nn.Linear(40, 24)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    converted = Bf16Linear(layer)
    assert converted.weight.dtype == torch.bfloat16 and not converted.weight.requires_grad
    for shape in [(1, 40), (3, 5, 40), (2, 37, 40)]:  # a decoding step, small and padded prefills
        x = torch.randn(*shape, generator=generator)
        out = converted(x)
        assert out.dtype == torch.float32 and out.shape == (*shape[:-1], 24)
        expected = F.linear(x.bfloat16().float(), weight.bfloat16().float(), bias)
        torch.testing.assert_close(out, expected, atol=2e-2, rtol=1e-2)
        # Padding rows never reach the real ones: each row alone gives the same numbers.
        rows = x.reshape(-1, 40)
        alone = torch.cat([bf16_linear(rows[i : i + 1], converted.weight, bias) for i in range(len(rows))])
        torch.testing.assert_close(out.reshape(-1, 24), alone, atol=2e-2, rtol=1e-2)


def test_every_linear_layer_but_the_head_is_converted(tiny_model_dir: Path) -> None:
    model = _model(tiny_model_dir)
    ids = torch.randint(0, 256, (2, 11), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    n_linear = sum(type(m) is nn.Linear for m in model.modules())
    head = model.get_output_embeddings()
    assert use_bf16_products(model) == n_linear - 1
    assert model.get_output_embeddings() is head and head.weight.dtype == torch.float32
    assert not any(type(m) is nn.Linear and m is not head for m in model.modules())
    with torch.no_grad():
        converted = model(input_ids=ids).logits
    assert converted.dtype == torch.float32
    assert not torch.equal(converted, plain)  # the products did change precision
    torch.testing.assert_close(converted, plain, atol=0.1, rtol=0.05)


def test_adapters_on_a_bf16_base_add_their_float32_low_rank_terms(
    tiny_model_dir: Path, adapter_dirs: list[Path]
) -> None:
    """A LoRA pair on a bf16-products base adds the same term it adds on a float32 base, alone and in a
    mixed batch (where it is checked row by row against the same rows run alone)."""
    ids = torch.randint(0, 256, (3, 9), generator=torch.Generator().manual_seed(0))
    model = _model(tiny_model_dir)
    use_bf16_products(model)
    lora = LoraSet(model)
    for name, adapter in zip("ab", adapter_dirs[:2], strict=True):
        lora.add(name, str(adapter), torch.device("cpu"), torch.float32)
    cpu = torch.device("cpu")
    with torch.no_grad():
        lora.router.route([None] * 3, cpu)
        plain = model(input_ids=ids).logits
        alone = {}
        for name in "ab":
            lora.router.route([name] * 3, cpu)
            alone[name] = model(input_ids=ids).logits
            assert (alone[name] - plain).abs().max() > 0.1  # the adapter does change the output
        lora.router.route(["b", None, "a"], cpu)
        mixed = model(input_ids=ids).logits
    # Within bf16's rounding of the activations (a row in another batch can round a value the other
    # way), and far from the other adapter's numbers.
    close = {"atol": 1e-2, "rtol": 1e-2}
    torch.testing.assert_close(mixed[0], alone["b"][0], **close)
    torch.testing.assert_close(mixed[1], plain[1], **close)
    torch.testing.assert_close(mixed[2], alone["a"][2], **close)
    assert (mixed[0] - alone["a"][0]).abs().max() > 0.1
    assert (mixed[2] - alone["b"][2]).abs().max() > 0.1


@pytest.mark.parametrize(
    ("dtype", "native", "expected"), [("auto", True, True), ("auto", False, False), ("float32", True, False)]
)
def test_auto_multiplies_in_bf16_only_on_cpus_that_do_it_natively(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, dtype: str, native: bool, expected: bool
) -> None:
    monkeypatch.setattr(weights_module, "cpu_has_native_bf16", lambda: native)
    cache = WeightCache(EngineConfig(device="cpu", dtype=dtype), EngineStats())
    model = cache.weights(str(tiny_model_dir)).model
    assert any(isinstance(m, Bf16Linear) for m in model.modules()) is expected
    assert model.get_output_embeddings().weight.dtype == torch.float32
