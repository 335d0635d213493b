"""A lone UTF-16 surrogate anywhere in a JSON body is a 400 naming the field, never a 500.

The SDK cannot send one (it encodes JSON as UTF-8); other clients escape it as \\ud800, so these tests post
raw JSON. Before the check, a surrogate in a model name or a file id reached the database and failed there.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from tests.conftest import LiveServer


def _raw_post(server: LiveServer, path: str, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, headers={"authorization": "Bearer x"}, timeout=30) as http:
        return http.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/chat/completions",
            {"model": "ft:\ud800", "messages": [{"role": "user", "content": "hi"}]},
            "model",
        ),
        ("/fine_tuning/jobs", {"model": "openft-tiny", "training_file": "file-\udc00"}, "training_file"),
        (
            "/fine_tuning/jobs",
            {"model": "openft-tiny", "training_file": "f", "metadata": {"k": "\ud800"}},
            "metadata.k",
        ),
        ("/webhook_endpoints", {"url": "https://x.example/\ud800", "event_types": []}, "url"),
    ],
)
def test_a_lone_surrogate_in_any_field_is_a_400_naming_it(
    shared_server: LiveServer, path: str, body: dict[str, Any], param: str
) -> None:
    response = _raw_post(shared_server, path, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error", error
    assert "unpaired surrogate" in error["message"]


def test_a_paired_surrogate_escape_is_text_and_passes(shared_server: LiveServer) -> None:
    response = _raw_post(
        shared_server, "/fine_tuning/jobs", {"model": "openft-tiny", "training_file": "file-\U0001f600"}
    )
    assert response.status_code == 400, response.text  # no such file: the request itself was read
    error = response.json()["error"]
    assert error["param"] == "training_file" and "No such file" in error["message"], error
