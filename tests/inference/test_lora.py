"""openft's LoRA application gives PEFT's numbers: one adapter, a mixed batch, and after removal."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from openft.inference.lora import LoraSet
from openft.inference.types import ModelLoadError


def _model(path: Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()


def _peft_logits(base_dir: Path, adapter: Path, ids: torch.Tensor) -> torch.Tensor:
    from peft import PeftModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = PeftModel.from_pretrained(_model(base_dir), str(adapter)).eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_adapters_match_peft_alone_and_mixed(tiny_model_dir: Path, adapter_dirs: list[Path]) -> None:
    ids = torch.randint(0, 256, (3, 9), generator=torch.Generator().manual_seed(0))
    expected = [_peft_logits(tiny_model_dir, a, ids) for a in adapter_dirs[:2]]
    model = _model(tiny_model_dir)
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    lora = LoraSet(model)
    lora.add("a", str(adapter_dirs[0]), torch.device("cpu"), torch.float32)
    lora.add("b", str(adapter_dirs[1]), torch.device("cpu"), torch.float32)
    with torch.no_grad():
        lora.router.route(["a"] * 3, torch.device("cpu"))
        torch.testing.assert_close(model(input_ids=ids).logits, expected[0], atol=1e-4, rtol=1e-4)
        lora.router.route(["b", None, "a"], torch.device("cpu"))
        mixed = model(input_ids=ids).logits
        torch.testing.assert_close(mixed[0], expected[1][0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(mixed[1], plain[1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(mixed[2], expected[0][2], atol=1e-4, rtol=1e-4)
        lora.remove("a")
        lora.router.route(["a"] * 3, torch.device("cpu"))  # gone: the base alone
        torch.testing.assert_close(model(input_ids=ids).logits, plain, atol=1e-5, rtol=1e-5)


def test_adapters_openft_cannot_apply_are_refused(
    tiny_model_dir: Path, adapter_dirs: list[Path], tmp_path: Path
) -> None:
    dora = tmp_path / "dora"
    dora.mkdir()
    config = json.loads((adapter_dirs[0] / "adapter_config.json").read_text()) | {"use_dora": True}
    (dora / "adapter_config.json").write_text(json.dumps(config))
    (dora / "adapter_model.safetensors").write_bytes(
        (adapter_dirs[0] / "adapter_model.safetensors").read_bytes()
    )
    with pytest.raises(ModelLoadError, match="use_dora"):
        LoraSet(_model(tiny_model_dir)).add("d", str(dora), torch.device("cpu"), torch.float32)


@pytest.mark.parametrize(("bf16_products", "tolerance"), [(False, 1e-4), (True, 0.03)])
def test_prompt_logprobs_score_a_text_as_peft_does(
    tiny_model_dir: Path,
    adapter_dirs: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    bf16_products: bool,
    tolerance: float,
) -> None:
    """How evaluations score a reference: the engine's prompt logprobs are log p(token | tokens before it)
    under the base alone and under an adapter applied on it, as the transformers/PEFT models give them
    (in float32; within bf16's rounding where the engine multiplies in bf16)."""
    from openft.inference import weights as weights_module
    from openft.inference.config import EngineConfig
    from openft.inference.local import LocalEngine
    from openft.inference.types import GenerationRequest, SamplingParams
    from tests.inference.conftest import adapter_ref, base_ref, run

    ids = torch.randint(0, 256, (1, 9), generator=torch.Generator().manual_seed(1))
    params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=True)
    monkeypatch.setattr(weights_module, "cpu_has_native_bf16", lambda: bf16_products)
    engine = LocalEngine(EngineConfig(cpu_threads=1))
    try:
        scored = {}
        for name, ref in (
            ("base", base_ref(tiny_model_dir)),
            ("adapter", adapter_ref(tiny_model_dir, adapter_dirs[0])),
        ):
            output = run(engine, GenerationRequest(ref, ids[0].tolist(), params, ()))
            (first, *_rest) = output.deltas
            assert first.prompt_logprobs is not None and all(d.prompt_logprobs is None for d in _rest)
            scored[name] = torch.tensor(first.prompt_logprobs)
    finally:
        engine.close()
    with torch.no_grad():
        base_logits = _model(tiny_model_dir)(input_ids=ids).logits
    adapter_logits = _peft_logits(tiny_model_dir, adapter_dirs[0], ids)
    for name, logits in (("base", base_logits), ("adapter", adapter_logits)):
        expected = logits[0, :-1].log_softmax(-1).gather(1, ids[0, 1:, None])[:, 0]
        torch.testing.assert_close(scored[name], expected, atol=tolerance, rtol=tolerance)
    assert (scored["base"] - scored["adapter"]).abs().max() > 10 * tolerance


def test_a_mixed_batch_of_adapters_of_different_ranks_and_layers_matches_peft(
    tiny_model_dir: Path, adapter_dirs: list[Path], tmp_path: Path
) -> None:
    """The mixed path pads every adapter to the batch's largest rank and leaves zeros where an adapter
    does not touch a layer: neither may leak into another row."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(7)
    narrow = tmp_path / "rank-2-attention-only"
    config = LoraConfig(r=2, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        get_peft_model(_model(tiny_model_dir), config).save_pretrained(str(narrow))
    ids = torch.randint(0, 256, (4, 7), generator=torch.Generator().manual_seed(1))
    wide_expected = _peft_logits(tiny_model_dir, adapter_dirs[0], ids)
    narrow_expected = _peft_logits(tiny_model_dir, narrow, ids)
    model = _model(tiny_model_dir)
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    lora = LoraSet(model)
    lora.add("wide", str(adapter_dirs[0]), torch.device("cpu"), torch.float32)
    lora.add("narrow", str(narrow), torch.device("cpu"), torch.float32)
    with torch.no_grad():
        lora.router.route(["narrow", "wide", None, "narrow"], torch.device("cpu"))
        mixed = model(input_ids=ids).logits
    for row, expected in enumerate((narrow_expected, wide_expected, plain, narrow_expected)):
        torch.testing.assert_close(mixed[row], expected[row], atol=1e-4, rtol=1e-4)


def test_a_mixed_batch_passes_layers_that_only_an_adapter_outside_it_targets(
    tiny_model_dir: Path, adapter_dirs: list[Path], tmp_path: Path
) -> None:
    """The MLP layers are wrapped for an adapter that is loaded but not in this batch, whose two
    adapters both leave them alone: there the base's output goes through unchanged."""
    from peft import LoraConfig, get_peft_model

    narrow = []
    for seed, targets in enumerate((["q_proj"], ["v_proj"])):
        torch.manual_seed(seed)
        config = LoraConfig(r=2, lora_alpha=8, target_modules=targets, init_lora_weights=False)
        path = tmp_path / targets[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            get_peft_model(_model(tiny_model_dir), config).save_pretrained(str(path))
        narrow.append(path)
    ids = torch.randint(0, 256, (2, 7), generator=torch.Generator().manual_seed(3))
    expected = [_peft_logits(tiny_model_dir, path, ids) for path in narrow]
    model = _model(tiny_model_dir)
    lora = LoraSet(model)
    lora.add("all-linear", str(adapter_dirs[0]), torch.device("cpu"), torch.float32)
    lora.add("q", str(narrow[0]), torch.device("cpu"), torch.float32)
    lora.add("v", str(narrow[1]), torch.device("cpu"), torch.float32)
    with torch.no_grad():
        lora.router.route(["q", "v"], torch.device("cpu"))
        mixed = model(input_ids=ids).logits
    torch.testing.assert_close(mixed[0], expected[0][0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mixed[1], expected[1][1], atol=1e-4, rtol=1e-4)
