"""`openft export` of real fine-tunes of openft-tiny: each format loads without openft's code and answers
the way the server answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.export.conftest import Tuned, run_export, server_answers, transformers_answers

pytestmark = pytest.mark.slow


def test_merged_lora_answers_like_the_server(tuned: Tuned, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    result = run_export(tuned.server, tuned.lora_model, "--format", "merged", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Check passed: 3/3 answers agree" in result.output
    assert {"model.safetensors", "config.json", "generation_config.json", "chat_template.jinja"} <= {
        p.name for p in out.iterdir()
    }
    model = AutoModelForCausalLM.from_pretrained(str(out))
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert model.dtype == torch.float32  # openft-tiny's own dtype
    assert transformers_answers(model, tokenizer) == server_answers(tuned, tuned.lora_model)


def test_merged_weights_are_the_base_plus_the_adapter(tuned: Tuned, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    assert (
        run_export(
            tuned.server, tuned.lora_model, "--format", "merged", "--out", str(out), "--no-check"
        ).exit_code
        == 0
    )
    merged = AutoModelForCausalLM.from_pretrained(str(out)).state_dict()
    base = AutoModelForCausalLM.from_pretrained(str(tuned.base_dir)).state_dict()
    from peft import PeftModel

    with_adapter = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(tuned.base_dir)), str(_model_dir(tuned, tuned.lora_model))
    ).merge_and_unload()
    reference = with_adapter.state_dict()
    changed = [name for name in merged if not torch.equal(merged[name], base[name])]
    assert changed, "the adapter changed no weight"
    for name, tensor in merged.items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=1e-6)


def test_merged_dtype_option(tuned: Tuned, tmp_path: Path) -> None:
    out = tmp_path / "bf16"
    result = run_export(
        tuned.server,
        tuned.full_model,
        "--format",
        "merged",
        "--dtype",
        "bfloat16",
        "--out",
        str(out),
        "--no-check",
    )
    assert result.exit_code == 0, result.output
    assert "Not checked" in result.output
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert AutoModelForCausalLM.from_pretrained(str(out)).dtype == torch.bfloat16


def test_full_fine_tune_merged_answers_like_the_server(tuned: Tuned, tmp_path: Path) -> None:
    out = tmp_path / "full"
    result = run_export(tuned.server, tuned.full_model, "--format", "merged", "--out", str(out))
    assert result.exit_code == 0, result.output
    model = AutoModelForCausalLM.from_pretrained(str(out))
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert transformers_answers(model, tokenizer) == server_answers(tuned, tuned.full_model)


def test_peft_adapter_loads_on_the_base(tuned: Tuned, tmp_path: Path) -> None:
    from peft import PeftModel

    out = tmp_path / "peft"
    result = run_export(tuned.server, tuned.lora_checkpoint, "--format", "peft", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Check passed: 3/3 answers agree" in result.output
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "openft-tiny"
    readme = (out / "README.md").read_text()
    assert "PeftModel.from_pretrained" in readme and "openft-tiny" in readme
    base = AutoModelForCausalLM.from_pretrained(str(tuned.base_dir))
    model = PeftModel.from_pretrained(base, str(out))
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert transformers_answers(model, tokenizer) == server_answers(tuned, tuned.lora_checkpoint)


def test_peft_of_a_full_fine_tune_is_refused(tuned: Tuned, tmp_path: Path) -> None:
    out = tmp_path / "peft"
    result = run_export(tuned.server, tuned.full_model, "--format", "peft", "--out", str(out))
    assert result.exit_code == 1
    assert "full fine-tune" in result.output and "merged" in result.output
    assert not out.exists()


def test_unknown_model_and_bad_options(tuned: Tuned, tmp_path: Path) -> None:
    missing = tuned.lora_model[:-4] + "zzzz"
    result = run_export(tuned.server, missing, "--format", "merged", "--out", str(tmp_path / "a"))
    assert result.exit_code == 1 and "does not exist" in result.output
    result = run_export(tuned.server, tuned.lora_model, "--format", "onnx", "--out", str(tmp_path / "b"))
    assert result.exit_code == 1 and "'format'" in result.output and "peft, merged, gguf" in result.output
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "file").write_text("x")
    result = run_export(tuned.server, tuned.lora_model, "--format", "merged", "--out", str(taken))
    assert result.exit_code == 1 and "not an empty directory" in result.output


@pytest.mark.parametrize("gguf_type", ["f32", "f16", "bf16", "q8_0"])
def test_gguf_round_trips_through_transformers(tuned: Tuned, tmp_path: Path, gguf_type: str) -> None:
    out = tmp_path / "gguf"
    result = run_export(
        tuned.server, tuned.lora_model, "--format", "gguf", "--gguf-type", gguf_type, "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert "answers agree" in result.output and "of answer tokens" in result.output
    (gguf_file,) = out.glob("*.gguf")
    assert gguf_file.name.endswith(f".{gguf_type}.gguf")
    merged_dir = tmp_path / "merged"
    assert run_export(
        tuned.server, tuned.lora_model, "--format", "merged", "--out", str(merged_dir), "--no-check"
    )
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir)).state_dict()
    loaded = AutoModelForCausalLM.from_pretrained(str(out), gguf_file=gguf_file.name).state_dict()
    assert set(loaded) == set(merged)
    for name, tensor in merged.items():
        # q/k rows come back in transformers' order only if the export interleaved them as llama.cpp does.
        torch.testing.assert_close(loaded[name], tensor, rtol=0, atol=_tolerance(tensor, gguf_type, name))
    if gguf_type == "f32":
        assert "Check passed: 3/3 answers agree, 100.0% of answer tokens" in result.output
        tokenizer = AutoTokenizer.from_pretrained(str(out), gguf_file=gguf_file.name)
        model = AutoModelForCausalLM.from_pretrained(str(out), gguf_file=gguf_file.name)
        model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
        assert transformers_answers(model, tokenizer) == server_answers(tuned, tuned.lora_model)


def test_gguf_metadata_is_llama_cpps(tuned: Tuned, tmp_path: Path) -> None:
    from gguf import GGMLQuantizationType, GGUFReader

    out = tmp_path / "gguf"
    result = run_export(
        tuned.server,
        tuned.full_model,
        "--format",
        "gguf",
        "--gguf-type",
        "q8_0",
        "--out",
        str(out),
        "--no-check",
    )
    assert result.exit_code == 0, result.output
    (gguf_file,) = out.glob("*.gguf")
    reader = GGUFReader(str(gguf_file))

    def value(key: str) -> object:
        return reader.fields[key].contents()

    assert value("general.architecture") == "llama"
    assert value("llama.block_count") == 2 and value("llama.embedding_length") == 256
    assert value("llama.attention.head_count") == 4 and value("llama.attention.head_count_kv") == 2
    assert value("llama.rope.dimension_count") == 64
    assert value("llama.rope.freq_base") == pytest.approx(10000.0)
    assert value("llama.attention.layer_norm_rms_epsilon") == pytest.approx(1e-6)
    assert value("general.file_type") == 7  # MOSTLY_Q8_0
    tokens = value("tokenizer.ggml.tokens")
    assert value("tokenizer.ggml.model") == "gpt2" and isinstance(tokens, list) and len(tokens) == 259
    assert tokens[value("tokenizer.ggml.eos_token_id")] == "<|im_end|>"  # type: ignore[index]
    assert tokens[value("tokenizer.ggml.padding_token_id")] == "<|endoftext|>"  # type: ignore[index]
    assert value("tokenizer.ggml.token_type")[256:] == [3, 3, 3]  # type: ignore[index]
    assert "<|im_start|>" in str(value("tokenizer.chat_template"))
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == GGMLQuantizationType.Q8_0
    assert types["blk.0.attn_norm.weight"] == GGMLQuantizationType.F32
    assert "output.weight" not in types  # tied to token_embd, as llama.cpp expects
    modelfile = (out / "Modelfile").read_text()
    # The byte vocabulary has no merges: the export says up front that llama.cpp will not load it.
    assert "llama.cpp and Ollama will not load this GGUF file" in " ".join(result.output.split())
    assert modelfile.startswith("# llama.cpp and Ollama will not load this GGUF file")
    assert f"\nFROM ./{gguf_file.name}\n" in modelfile
    assert 'TEMPLATE """' in modelfile and "{{ .Content }}<|im_end|>" in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile


def _tolerance(tensor: torch.Tensor, gguf_type: str, name: str) -> float:
    if gguf_type == "f32" or tensor.dim() == 1:
        return 0.0
    largest = float(tensor.abs().max())
    if gguf_type == "q8_0":
        return largest / 127 * 0.5 + largest * 1e-3  # half a step of the block's scale (f16 scale rounding)
    eps = {"f16": np.finfo(np.float16).eps, "bf16": 2**-8}[gguf_type]
    return largest * float(eps)


def _model_dir(tuned: Tuned, name: str) -> Path:
    from openft.services.auth import find_project
    from openft.services.inference import resolve_model

    project = find_project(tuned.server.ctx, name.split(":")[2])
    assert project is not None
    adapter = resolve_model(tuned.server.ctx, project, name).adapter_path
    assert adapter is not None
    return Path(adapter)
