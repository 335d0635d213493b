"""Built-in models: deterministic builds, plain transformers loading, sizes, and safe concurrent builds."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from openft.models.builtin import BUILTIN_MODELS, build_builtin_model, ensure_builtin_model, is_built


def _files(model_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(model_dir.iterdir())}


def test_two_builds_give_identical_files(tiny_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(7)
    build_builtin_model("openft-tiny", tmp_path / "again")
    after_build = torch.rand(3)
    torch.manual_seed(7)
    assert torch.equal(after_build, torch.rand(3))  # the build left torch's global generator alone
    assert _files(tmp_path / "again") == _files(tiny_dir)
    first, second = (
        load_file(tiny_dir / "model.safetensors"),
        load_file(tmp_path / "again" / "model.safetensors"),
    )
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_weights_are_random_but_not_degenerate(tiny_dir: Path) -> None:
    tensors = load_file(tiny_dir / "model.safetensors")
    embed = tensors["model.embed_tokens.weight"]
    assert embed.shape == (259, 256)
    assert 0.015 < embed.std().item() < 0.025
    assert torch.all(tensors["model.norm.weight"] == 1)
    # Each tensor has its own seed: no two weight matrices of the same shape are equal.
    q0, q1 = (
        tensors["model.layers.0.self_attn.q_proj.weight"],
        tensors["model.layers.1.self_attn.q_proj.weight"],
    )
    assert not torch.equal(q0, q1)


def test_tiny_model_loads_with_auto_classes_and_runs(tiny_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    assert type(model).__name__ == "LlamaForCausalLM"
    n_parameters = sum(p.numel() for p in model.parameters())
    assert n_parameters == BUILTIN_MODELS["openft-tiny"].n_parameters
    assert 1_000_000 <= n_parameters <= 5_000_000
    ids = torch.tensor([tokenizer.encode("Hello there", add_special_tokens=False)])
    logits = model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], 259)
    assert torch.isfinite(logits).all()
    assert model.config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert model.config.max_position_embeddings == 2048


def test_manifest_describes_the_build(tiny_dir: Path) -> None:
    manifest = json.loads((tiny_dir / "openft_builtin.json").read_text())
    assert manifest["name"] == "openft-tiny"
    assert manifest["n_parameters"] == BUILTIN_MODELS["openft-tiny"].n_parameters


def test_ensure_reuses_an_existing_build(tiny_dir: Path) -> None:
    before = (tiny_dir / "model.safetensors").stat().st_mtime_ns
    assert ensure_builtin_model("openft-tiny", tiny_dir.parent) == tiny_dir
    assert (tiny_dir / "model.safetensors").stat().st_mtime_ns == before


def test_racing_builds_end_with_one_complete_model(tmp_path: Path) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(ensure_builtin_model("openft-tiny", tmp_path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [tmp_path / "openft-tiny"] * 3
    assert is_built(tmp_path / "openft-tiny")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["openft-tiny"]  # no temporary directories left


def test_a_foreign_directory_in_the_way_is_reported(tmp_path: Path) -> None:
    (tmp_path / "openft-tiny").mkdir()
    (tmp_path / "openft-tiny" / "notes.txt").write_text("not a model")
    with pytest.raises(FileExistsError, match="not a complete built-in model"):
        ensure_builtin_model("openft-tiny", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["openft-tiny"]


def test_unknown_builtin_name_is_a_key_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        ensure_builtin_model("openft-huge", tmp_path)


def test_parameter_counts_are_in_the_stated_ranges() -> None:
    assert 1_000_000 <= BUILTIN_MODELS["openft-tiny"].n_parameters <= 5_000_000
    assert 20_000_000 <= BUILTIN_MODELS["openft-small"].n_parameters <= 40_000_000


@pytest.mark.slow
def test_small_model_builds_loads_and_runs(tmp_path: Path) -> None:
    model_dir = ensure_builtin_model("openft-small", tmp_path)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    n_parameters = sum(p.numel() for p in model.parameters())
    assert n_parameters == BUILTIN_MODELS["openft-small"].n_parameters
    assert 20_000_000 <= n_parameters <= 40_000_000
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = torch.tensor([tokenizer.encode("Bonjour 🌍", add_special_tokens=False)])
    assert torch.isfinite(model(input_ids=ids).logits).all()
