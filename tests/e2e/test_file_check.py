"""The extension endpoint GET /v1/files/{id}/check: the checker's report for an uploaded file."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import openai
import pytest

if TYPE_CHECKING:
    from openai import OpenAI


def _chat(i: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}


def test_the_report_names_every_error_with_line_and_field(shared_client: OpenAI) -> None:
    lines = [json.dumps(_chat(i)) for i in range(11)]
    lines[4] = json.dumps({"messages": [{"content": "no role"}, {"role": "assistant", "content": "x"}]})
    lines[7] = json.dumps({"messages": [{"role": "user", "content": "only a question"}]})
    uploaded = shared_client.files.create(file=("data.jsonl", "\n".join(lines).encode()), purpose="fine-tune")

    report = shared_client.get(f"/files/{uploaded.id}/check", cast_to=object)
    assert isinstance(report, dict)
    assert report["object"] == "file.check" and report["file_id"] == uploaded.id
    training = report["training"]
    assert training["path"] == "data.jsonl"
    assert training["n_examples"] == 11 and training["n_valid_examples"] == 9
    found = {(e["code"], e["first"][0]["line"], e["first"][0]["field"]) for e in training["errors"]}
    assert ("message_missing_key", 5, "messages[0].role") in found
    assert ("example_missing_assistant_message", 8, None) in found
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
