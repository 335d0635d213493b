"""GET /v1/models/{model}/export through a live server: a streamed tar archive of the export, scoped to
the caller's project, with OpenAI's error envelope for bad requests."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import httpx
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from openft.export.check import DEFAULT_MAX_TOKENS
from tests.export.conftest import Tuned, server_answers, transformers_answers

pytestmark = pytest.mark.slow


def _download(
    http: httpx.Client, model: str, into: Path, headers: dict[str, str] | None = None, **params: str
) -> list[str]:
    """Stream the archive to disk, then unpack it; returns its member names (and fills `headers`)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "export.tar"
    with http.stream("GET", f"models/{model}/export", params=params) as response:
        assert response.status_code == 200, response.read()
        if headers is not None:
            headers.update(response.headers)
        assert response.headers["content-type"] == "application/x-tar"
        assert response.headers["content-disposition"].startswith("attachment; filename=")
        with archive.open("wb") as file:
            for chunk in response.iter_bytes():
                file.write(chunk)
    assert archive.stat().st_size == int(response.headers["content-length"])
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        tar.extractall(into, filter="data")
    return names


def test_merged_archive_loads_with_transformers(tuned: Tuned, tmp_path: Path) -> None:
    with tuned.server.http(tuned.key) as http:
        names = _download(http, tuned.lora_model, tmp_path, format="merged")
    (folder,) = {name.split("/")[0] for name in names}
    assert folder.endswith("-merged") and ":" not in folder
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / folder))
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path / folder))
    assert transformers_answers(model, tokenizer) == server_answers(tuned, tuned.lora_model)
    assert not any((tuned.server.data_dir / "exports").iterdir()), "the scratch copy outlived the stream"


def test_peft_and_gguf_archives(tuned: Tuned, tmp_path: Path) -> None:
    with tuned.server.http(tuned.key) as http:
        peft_names = _download(http, tuned.lora_checkpoint, tmp_path / "peft", format="peft")
        gguf_names = _download(http, tuned.full_model, tmp_path / "gguf", format="gguf", gguf_type="q8_0")
    assert {n.split("/")[1] for n in peft_names} >= {
        "adapter_model.safetensors",
        "adapter_config.json",
        "README.md",
    }
    assert {n.rsplit(".", 2)[-2:][0] for n in gguf_names if n.endswith(".gguf")} == {"q8_0"}
    assert any(n.endswith("/Modelfile") for n in gguf_names)


def test_a_checked_archive_carries_the_check(tuned: Tuned, tmp_path: Path) -> None:
    headers: dict[str, str] = {}
    with tuned.server.http(tuned.key) as http:
        names = _download(http, tuned.lora_model, tmp_path, headers, format="peft", check="true")
    (check_file,) = [n for n in names if n.endswith("/check.json")]
    check = json.loads((tmp_path / check_file).read_text())
    assert headers["x-openft-export-check"] == "passed" and check["passed"] is True
    assert check["prompts"] and check["token_agreement"] == 1.0
    client = tuned.server.client(tuned.key)
    for row in check["prompts"]:  # the "served" side is what chat answers, and the export said the same
        chat = client.chat.completions.create(
            model=tuned.lora_model,
            messages=[{"role": "user", "content": row["prompt"]}],
            temperature=0,
            max_tokens=DEFAULT_MAX_TOKENS,
        )
        assert row["served"] == chat.choices[0].message.content == row["exported"]


def test_errors_use_openais_envelope(tuned: Tuned) -> None:
    with tuned.server.http(tuned.key) as http:
        cases = {
            "bogus": http.get(f"models/{tuned.lora_model}/export", params={"format": "onnx"}),
            "missing": http.get(f"models/{tuned.lora_model}/export"),
            "gguf_type": http.get(
                f"models/{tuned.lora_model}/export", params={"format": "gguf", "gguf_type": "q2"}
            ),
            "peft_of_full": http.get(f"models/{tuned.full_model}/export", params={"format": "peft"}),
            "base": http.get("models/openft-tiny/export", params={"format": "merged"}),
            "unknown": http.get(f"models/{tuned.lora_model[:-4]}zzzz/export", params={"format": "merged"}),
        }
    params = {name: r.json()["error"]["param"] for name, r in cases.items()}
    statuses = {name: r.status_code for name, r in cases.items()}
    assert statuses == {
        "bogus": 400,
        "missing": 400,
        "gguf_type": 400,
        "peft_of_full": 400,
        "base": 400,
        "unknown": 404,
    }
    assert params == {
        "bogus": "format",
        "missing": "format",
        "gguf_type": "gguf_type",
        "peft_of_full": "format",
        "base": "model",
        "unknown": "model",
    }
    assert "merged" in cases["peft_of_full"].json()["error"]["message"]
    assert all("/tmp" not in r.text and str(tuned.server.data_dir) not in r.text for r in cases.values())


def test_another_projects_model_is_not_found(tuned: Tuned) -> None:
    assert tuned.lora_model.split(":")[2] == "exports"
    with tuned.server.http(tuned.foreign_key) as http:
        response = http.get(f"models/{tuned.lora_model}/export", params={"format": "peft"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    with (
        tuned.server.http(tuned.key) as http,
        http.stream("GET", f"models/{tuned.lora_model}/export", params={"format": "peft"}) as allowed,
    ):
        assert allowed.status_code == 200
        data = allowed.read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert any(name.endswith("adapter_model.safetensors") for name in tar.getnames())
    with tuned.server.http(None) as http:
        assert http.get(f"models/{tuned.lora_model}/export", params={"format": "peft"}).status_code == 401
