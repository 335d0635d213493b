"""GGUF import on a file written here: the built-in tiny model as an F32 GGUF with its byte tokenizer
and ChatML template in the metadata, converted and cached; bad files get one clear line."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from openft.cli.models import models_app
from openft.models.catalog import Catalog, InvalidModelError
from openft.models.gguf_header import read_gguf_header
from openft.models.gguf_import import MANIFEST_NAME, converted_dir, ensure_converted, inspect_gguf
from tests.models.tiny_gguf import write_gguf_from_model_dir

runner = CliRunner()
CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "Marv is a sarcastic bot."},
        {"role": "user", "content": "Héllo wörld ✓ — 你好"},
        {"role": "assistant", "content": "Oh, hello. How thrilling."},
    ],
]


@pytest.fixture(scope="module")
def tiny_gguf(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_gguf_from_model_dir(tiny_dir, tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def converted(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_converted(tiny_gguf, tmp_path_factory.mktemp("models"))


def test_the_header_says_what_the_model_is_without_reading_weights(tiny_gguf: Path) -> None:
    from openft.models.builtin import BUILTIN_MODELS

    model = inspect_gguf(tiny_gguf)
    assert model.architecture == "llama"
    assert model.context_length == 2048
    assert model.n_parameters == BUILTIN_MODELS["openft-tiny"].n_parameters
    assert model.has_chat_template


def test_the_converted_checkpoint_gives_the_same_logits_as_the_gguf_loaded_original(
    tiny_gguf: Path, converted: Path, tiny_dir: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    assert (converted / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((converted / "config.json").read_text())
    from_gguf: Any = AutoModelForCausalLM.from_pretrained(
        str(tiny_gguf.parent), gguf_file=tiny_gguf.name, dtype=torch.float32
    )
    plain: Any = AutoModelForCausalLM.from_pretrained(str(converted))
    original: Any = AutoModelForCausalLM.from_pretrained(str(tiny_dir))
    ids = torch.tensor([[257, 72, 105, 33, 258, 10, 195, 169]])
    with torch.no_grad():
        expected = from_gguf(ids).logits
        assert torch.equal(plain(ids).logits, expected)
        assert torch.equal(original(ids).logits, expected)  # F32 round trip: the same weights


def test_the_converted_tokenizer_and_template_give_the_gguf_originals_ids(
    tiny_gguf: Path, converted: Path
) -> None:
    from transformers import AutoTokenizer

    from_gguf = AutoTokenizer.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name)
    plain = AutoTokenizer.from_pretrained(str(converted))
    assert plain.eos_token == "<|im_end|>" and plain.model_max_length == 2048
    for messages in CONVERSATIONS:
        for prompt in (False, True):
            assert plain.apply_chat_template(
                messages, tokenize=True, add_generation_prompt=prompt, return_dict=False
            ) == from_gguf.apply_chat_template(
                messages, tokenize=True, add_generation_prompt=prompt, return_dict=False
            )


def test_a_second_use_reuses_the_cached_checkpoint(tiny_gguf: Path, converted: Path) -> None:
    steps: list[str] = []
    again = ensure_converted(tiny_gguf, converted.parent.parent, steps.append)
    assert again == converted and steps == []  # nothing was converted
    assert json.loads((converted / MANIFEST_NAME).read_text())["source"] == str(tiny_gguf)


def test_a_copy_of_the_file_shares_the_cache_and_a_changed_file_does_not(
    tiny_gguf: Path, converted: Path, tmp_path: Path
) -> None:
    models_dir = converted.parent.parent
    copy = tmp_path / "tiny.gguf"
    shutil.copy(tiny_gguf, copy)
    assert converted_dir(copy, models_dir) == converted
    middle = copy.stat().st_size // 2
    assert middle > 2 << 20  # well inside the weights, away from the header and the last tensor
    with copy.open("r+b") as file:  # one byte of a tensor in the middle of the file changes
        file.seek(middle)
        byte = file.read(1)
        file.seek(middle)
        file.write(bytes([byte[0] ^ 1]))
    assert converted_dir(copy, models_dir) != converted


def test_the_catalog_registers_a_gguf_file_as_a_local_model(tiny_gguf: Path, tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "models")
    entry = catalog.add_local("tiny-gguf", tiny_gguf)
    assert entry.kind == "local" and entry.gguf_path == tiny_gguf
    assert entry.path == converted_dir(tiny_gguf, tmp_path / "models")
    assert (entry.context_length, entry.has_chat_template, entry.n_parameters) == (2048, True, 2033664)
    # The cached checkpoint is cleaned away: the registered file is converted again on use.
    assert entry.path is not None
    shutil.rmtree(entry.path)
    assert catalog.resolve_path("tiny-gguf") == entry.path
    assert (entry.path / "model.safetensors").is_file()


def test_models_add_and_list_through_the_cli(
    tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENFT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "250")
    result = runner.invoke(models_app, ["add", "tiny-gguf", str(tiny_gguf)])
    assert result.exit_code == 0, result.output
    assert "Registered tiny-gguf" in result.output and f"converted from {tiny_gguf}" in result.output
    listing = runner.invoke(models_app, ["list"]).output.splitlines()
    row = next(line for line in listing if "tiny-gguf" in line)
    assert "local" in row and "2.0M" in row and "2048" in row


def _bad_files(tiny_gguf: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    import gguf

    text = tmp_path / "notes.gguf"
    text.write_text("this is not a model\n")
    text_without_suffix = tmp_path / "notes.txt"
    text_without_suffix.write_text("this is not a model either\n")
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(tiny_gguf.read_bytes()[: tiny_gguf.stat().st_size // 2])
    cut_header = tmp_path / "cut-header.gguf"
    cut_header.write_bytes(tiny_gguf.read_bytes()[:1000])
    unsupported = tmp_path / "bert.gguf"
    writer = gguf.GGUFWriter(str(unsupported), "bert")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    corrupt = tmp_path / "corrupt.gguf"  # the first key claims to be 2**62 bytes long
    corrupt.write_bytes(b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1 << 62))
    nested = tmp_path / "nested.gguf"  # one key whose value is an array of an array of ... 10,000 deep
    key = b"general.deep"
    nested.write_bytes(
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", len(key))
        + key
        + struct.pack("<I", 9)
        + struct.pack("<IQ", 9, 1) * 10_000
    )
    split = tmp_path / "part-00001-of-00002.gguf"
    writer = gguf.GGUFWriter(str(split), "llama")
    writer.add_uint16("split.count", 2)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {
        "not gguf": (text, "is not a GGUF file"),
        "not gguf, no suffix": (text_without_suffix, "is neither a model directory nor a GGUF file"),
        "corrupt": (corrupt, "corrupt header: a string of"),
        "nested": (nested, "metadata arrays nested more than"),
        "split": (split, "is one part of a model split into 2 GGUF files"),
        "truncated": (truncated, "is truncated"),
        "cut header": (cut_header, "ends inside its header"),
        "unsupported": (unsupported, "holds a 'bert' model, an architecture transformers cannot load"),
        "missing": (tmp_path / "gone.gguf", "is not a readable GGUF file"),
    }


def test_bad_files_are_refused_with_one_clear_line_and_exit_code_2(
    tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENFT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "1000")  # the message on one line, however long its paths
    for kind, (path, reason) in _bad_files(tiny_gguf, tmp_path).items():
        with pytest.raises(InvalidModelError, match=reason):
            Catalog(tmp_path / "models").add_local("bad", path)
        result = runner.invoke(models_app, ["add", "bad", str(path)])
        assert result.exit_code == 2, (kind, result.output)
        assert result.output.startswith("Error: ") and reason in result.output, (kind, result.output)
        assert len(result.output.strip().splitlines()) == 1, (kind, result.output)
        if kind != "not gguf, no suffix":  # GGUF errors can reach API clients: the file's name, not its path
            assert str(tmp_path) not in result.output, (kind, result.output)
    assert not (tmp_path / "data" / "models" / "catalog.json").exists()  # nothing was registered


def test_the_header_reader_skips_long_arrays_and_keeps_short_ones(tiny_gguf: Path) -> None:
    header = read_gguf_header(tiny_gguf)
    assert header.metadata["tokenizer.ggml.tokens"] is None  # 259 tokens: skipped, not parsed
    assert header.metadata["tokenizer.ggml.model"] == "gpt2"
    assert len(header.tensors) == 2 * 9 + 2
