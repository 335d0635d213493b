"""An unexpected exception still answers with OpenAI's envelope, a request id and no internals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from openft.server import build_server
from openft.settings import Settings


@pytest.fixture
def app_with_a_bug(tmp_path: Path) -> Iterator[TestClient]:
    app: FastAPI = build_server(Settings(data_dir=tmp_path), run_worker=False).app

    @app.get("/v1/broken")
    def broken() -> None:
        raise RuntimeError("internal detail: /secret/path password=hunter2")

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_an_unhandled_exception_is_a_500_envelope_with_a_request_id(app_with_a_bug: TestClient) -> None:
    response = app_with_a_bug.get("/v1/broken")

    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "message": "The server had an error while processing your request. The error is logged; "
            "please retry or report it.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert "hunter2" not in response.text
    assert response.headers.get("x-request-id", "").startswith("req_")


def test_request_ids_are_unique_per_request(app_with_a_bug: TestClient) -> None:
    ids = {app_with_a_bug.get("/health").headers["x-request-id"] for _ in range(20)}

    assert len(ids) == 20
