"""The extension endpoint GET /v1/files/{id}/check: the checker's report for an uploaded file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
import pytest
from transformers import AutoTokenizer

from openft.data import check_file
from openft.models.catalog import Catalog

if TYPE_CHECKING:
    from openai import OpenAI

    from tests.conftest import LiveServer


def _chat(i: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}


def test_the_report_names_every_error_with_line_and_field(shared_client: OpenAI) -> None:
    lines = [json.dumps(_chat(i)) for i in range(11)]
    lines[4] = json.dumps({"messages": [{"content": "no role"}, {"role": "assistant", "content": "x"}]})
    lines[7] = json.dumps({"messages": [{"role": "user", "content": "only a question"}]})
    # A lone surrogate (json.dumps writes it as the escape "\ud800") is not text: no tokenizer takes it.
    lines[9] = json.dumps(
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "\ud800"}]}
    )
    uploaded = shared_client.files.create(file=("data.jsonl", "\n".join(lines).encode()), purpose="fine-tune")

    report = shared_client.get(f"/files/{uploaded.id}/check", cast_to=object)
    assert isinstance(report, dict)
    assert report["object"] == "file.check" and report["file_id"] == uploaded.id
    training = report["training"]
    assert training["path"] == "data.jsonl"
    assert training["n_examples"] == 11 and training["n_valid_examples"] == 8
    found = {(e["code"], e["first"][0]["line"], e["first"][0]["field"]) for e in training["errors"]}
    assert ("message_missing_key", 5, "messages[0].role") in found
    assert ("example_missing_assistant_message", 8, None) in found
    assert ("invalid_utf8", 10, "messages[1].content") in found
    assert report["ok"] is False
    assert report["blocking_error"]["code"] == "invalid_training_file"
    assert "line 5" in report["blocking_error"]["message"]


def test_only_fine_tune_files_can_be_checked(shared_client: OpenAI) -> None:
    other = shared_client.files.create(file=("notes.txt", b"hello"), purpose="user_data")
    with pytest.raises(openai.BadRequestError) as caught:
        shared_client.get(f"/files/{other.id}/check", cast_to=object)
    assert caught.value.param == "file_id"
    with pytest.raises(openai.NotFoundError):
        shared_client.get("/files/file-missing/check", cast_to=object)


def test_with_a_model_the_report_counts_tokens_with_its_tokenizer(
    shared_server: LiveServer, shared_client: OpenAI, tmp_path: Path
) -> None:
    lines = [json.dumps(_chat(i)) for i in range(12)]
    local = tmp_path / "chats.jsonl"
    local.write_text("\n".join(lines) + "\n")
    uploaded = shared_client.files.create(file=("chats.jsonl", local.read_bytes()), purpose="fine-tune")

    report = shared_client.get(f"/files/{uploaded.id}/check?model=openft-tiny", cast_to=object)
    assert isinstance(report, dict)
    assert report["model"] == "openft-tiny" and report["training"]["path"] == "chats.jsonl"
    # The same counts as the checker run here with the model's own tokenizer.
    model_dir = Catalog(shared_server.settings.models_dir).resolve_path("openft-tiny")
    here = check_file(local, tokenizer=AutoTokenizer.from_pretrained(str(model_dir)))
    expected = json.loads(json.dumps(here.to_dict()))  # as it travels
    assert report["training"]["tokens"] == expected["training"]["tokens"]
    assert report["training"]["tokens"]["n_tokens"] > 12 * len("q0a0")  # the template counts too
    assert report["estimate"] == expected["estimate"]
    assert report["lint"] == expected["lint"] and report["ok"] is True

    kept = list(shared_server.settings.file_checks_dir.glob("*.json"))  # the report, kept
    assert len(kept) >= 1
    assert shared_client.get(f"/files/{uploaded.id}/check?model=openft-tiny", cast_to=object) == report
    without_model = shared_client.get(f"/files/{uploaded.id}/check", cast_to=object)
    assert isinstance(without_model, dict) and without_model["training"]["tokens"] is None

    before = set(shared_server.settings.file_checks_dir.glob("*.json"))
    shared_client.files.delete(uploaded.id)
    assert len(before - set(shared_server.settings.file_checks_dir.glob("*.json"))) == 1  # its report went


def test_an_unknown_model_is_a_400_naming_the_model(shared_client: OpenAI) -> None:
    uploaded = shared_client.files.create(
        file=("d.jsonl", "\n".join(json.dumps(_chat(i)) for i in range(10)).encode()), purpose="fine-tune"
    )
    with pytest.raises(openai.BadRequestError) as caught:
        shared_client.get(f"/files/{uploaded.id}/check?model=no-such-model", cast_to=object)
    assert caught.value.param == "model"
    assert "no-such-model" in caught.value.message


def test_a_model_whose_tokenizer_does_not_load_is_a_400_naming_the_model(
    shared_server: LiveServer, shared_client: OpenAI, tmp_path: Path
) -> None:
    catalog = Catalog(shared_server.settings.models_dir)
    broken = tmp_path / "broken"
    shutil.copytree(catalog.resolve_path("openft-tiny"), broken)
    catalog.add_local("tokenizerless", broken)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (broken / name).unlink()
    uploaded = shared_client.files.create(
        file=("d.jsonl", "\n".join(json.dumps(_chat(i)) for i in range(10)).encode()), purpose="fine-tune"
    )
    with pytest.raises(openai.BadRequestError) as caught:
        shared_client.get(f"/files/{uploaded.id}/check?model=tokenizerless", cast_to=object)
    assert caught.value.param == "model"
    assert "The file could not be checked: cannot load the tokenizer of tokenizerless: " in str(caught.value)
    assert str(shared_server.settings.files_dir) not in caught.value.message  # no server paths


def test_method_reinforcement_checks_the_file_as_prompts(shared_client: OpenAI) -> None:
    lines = [{"messages": [{"role": "user", "content": f"q{i}"}], "answer": f"a{i}"} for i in range(10)]
    lines[2]["messages"].append({"role": "assistant", "content": "a2"})  # allowed: dropped
    lines[6] = {"messages": [{"role": "user"}], "answer": "a6"}
    body = "\n".join(json.dumps(line) for line in lines).encode()
    uploaded = shared_client.files.create(file=("prompts.jsonl", body), purpose="fine-tune")

    report = shared_client.get(f"/files/{uploaded.id}/check?method=reinforcement", cast_to=object)
    assert isinstance(report, dict)
    assert report["method"] == "reinforcement" and report["training"]["format"] == "prompt"
    assert report["training"]["n_examples"] == 10 and report["training"]["n_valid_examples"] == 9
    [error] = report["training"]["errors"]
    assert (error["code"], error["first"][0]["line"], error["first"][0]["field"]) == (
        "message_missing_key",
        7,
        "messages[0].content",
    )
    assert report["estimate"] is None and report["ok"] is False
    assert "final_assistant_message" in {finding["code"] for finding in report["lint"]}

    with_model = shared_client.get(
        f"/files/{uploaded.id}/check?method=reinforcement&model=openft-tiny", cast_to=object
    )
    assert isinstance(with_model, dict) and with_model["method"] == "reinforcement"
    assert with_model["training"]["tokens"]["n_trained_tokens"] == 0
    assert with_model["training"]["tokens"]["n_tokens"] > 0
    assert with_model["reinforcement"]["samples_per_prompt"] == 4 and with_model["estimate"] is None

    as_supervised = shared_client.get(f"/files/{uploaded.id}/check?method=supervised", cast_to=object)
    assert isinstance(as_supervised, dict)
    codes = {e["code"] for e in as_supervised["training"]["errors"]}
    assert "example_missing_assistant_message" in codes

    with pytest.raises(openai.BadRequestError) as caught:
        shared_client.get(f"/files/{uploaded.id}/check?method=rlhf", cast_to=object)
    assert caught.value.param == "method"
