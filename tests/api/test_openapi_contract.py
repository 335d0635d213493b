"""The published /openapi.json is true: schemathesis sends generated requests to a live server and every
answer must be documented (status code, content type, body schema), and none may be a server error.

The server runs without a job worker, so no request can start training; ids in generated requests are
random, so nothing runs on an existing object either. Every operation is tested; none is excluded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks as openapi_checks

if TYPE_CHECKING:
    from conftest import LiveServer

AUTH = {"Authorization": "Bearer test"}
CHECKS = [
    not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]
# Invalid input must also be refused with a documented 4xx.
NEGATIVE_CHECKS = [*CHECKS, openapi_checks.negative_data_rejection]
EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 10}


@pytest.fixture(scope="module")
def schema(module_server: LiveServer) -> Any:
    return schemathesis.openapi.from_url(module_server.root_url + "/openapi.json")


def failures_of(operation: Any, mode: GenerationMode, base_url: str) -> list[str]:
    """Run generated requests for one operation; the failure reports, empty when all answers conform."""
    found: list[str] = []
    checks = NEGATIVE_CHECKS if mode is GenerationMode.NEGATIVE else CHECKS

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,  # the same requests on every run: a failure here is reproducible
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        try:
            case.call_and_validate(base_url=base_url, headers=AUTH, checks=checks)
        except BaseExceptionGroup as group:  # schemathesis's FailureGroup: one report per request
            found.append(f"{operation.label} ({mode.value}): {group}")

    try:
        run()
    except Unsatisfiable:
        # Nothing about this operation can be made invalid (only free-form string ids in the path);
        # its positive run covers it.
        assert mode is GenerationMode.NEGATIVE, operation.label
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_answer_is_documented(schema: Any, module_server: LiveServer, mode: GenerationMode) -> None:
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40  # the whole API, not a schema that failed to load
    failures = [
        report for operation in operations for report in failures_of(operation, mode, module_server.root_url)
    ]
    assert failures == []


def test_every_operation_declares_openai_error_answers_and_no_422(module_server: LiveServer) -> None:
    published = httpx.get(module_server.root_url + "/openapi.json").json()
    for path, operations in published["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            for status in ("400", "401", "404"):
                envelope = responses[status]["content"]["application/json"]["schema"]
                assert envelope == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
    assert "HTTPValidationError" not in published["components"]["schemas"]


def test_streamed_multipart_bodies_and_list_bounds_are_published(module_server: LiveServer) -> None:
    published = httpx.get(module_server.root_url + "/openapi.json").json()
    paths = published["paths"]
    form = paths["/v1/files"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file", "purpose"]
    assert "fine-tune" in form["properties"]["purpose"]["enum"]
    part = paths["/v1/uploads/{upload_id}/parts"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert part["schema"]["required"] == ["data"]
    limit = next(p for p in paths["/v1/fine_tuning/jobs"]["get"]["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 100)
    order = next(p for p in paths["/v1/files"]["get"]["parameters"] if p["name"] == "order")
    assert order["schema"]["enum"] == ["asc", "desc"]
    upload = published["components"]["schemas"]["CreateUploadRequest"]["properties"]["purpose"]
    assert "fine-tune" in upload["enum"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/files", "GET, POST"),
        ("POST", "/v1/files/file-abc", "DELETE, GET"),
        ("PATCH", "/v1/models/ft:x:y", "DELETE, GET"),
    ],
)
def test_a_wrong_method_is_answered_405_with_every_allowed_method(
    module_server: LiveServer, method: str, path: str, allowed: str
) -> None:
    answer = httpx.request(method, module_server.root_url + path, headers=AUTH)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allowed
    assert answer.json()["error"]["message"] == f"Method {method} is not allowed for {path}"
