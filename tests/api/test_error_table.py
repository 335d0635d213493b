"""Bad requests, one row each: the exact status and OpenAI error envelope, never a 5xx.

Requests are sent with raw httpx so that malformed bodies and missing headers can be expressed;
the same answers reach the SDK as its typed exceptions (see tests/e2e).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import func, select

from openft.services.auth import create_key, revoke_key
from openft.store.tables import FileRow

if TYPE_CHECKING:
    from conftest import LiveServer, ServerFactory

CHAT = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
MISSING_ID = "file-doesnotexist0000000"


@dataclass
class Servers:
    """The servers the table runs against, and objects made on them."""

    local: LiveServer
    small: LiveServer  # max_file_bytes=1024, max_part_bytes=512
    keyed: LiveServer  # two projects with one key each; local mode is over
    key_a: str
    key_b: str
    revoked_key: str
    file_of_b: str
    pending_upload: str  # on `small`


@pytest.fixture(scope="module")
def servers(module_server_factory: ServerFactory) -> Servers:
    local = module_server_factory()
    small = module_server_factory(max_file_bytes=1024, max_part_bytes=512)
    keyed = module_server_factory()
    key_a, key_b = keyed.create_key("alpha"), keyed.create_key("beta")
    revoked_key, info = create_key(keyed.ctx, "alpha")
    revoke_key(keyed.ctx, info.id)
    file_of_b = keyed.client(key_b).files.create(file=("b.jsonl", CHAT), purpose="fine-tune").id
    pending_upload = (
        small.client()
        .uploads.create(bytes=2048, filename="p.bin", mime_type="image/png", purpose="vision")
        .id
    )
    return Servers(local, small, keyed, key_a, key_b, revoked_key, file_of_b, pending_upload)


@dataclass(frozen=True)
class Bad:
    """One bad request and the envelope it must get."""

    server: str  # "local" | "small" | "keyed"
    request: str  # "METHOD path", the path relative to /v1/
    status: int
    param: str | None
    message_start: str  # "" where only status, type, code and param are pinned
    code: str | None = None
    type: str = "invalid_request_error"
    files: dict[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    content_type: str | None = None
    params: dict[str, Any] | None = None
    key: str | None = "test"  # "key_a" etc. name a key of the keyed server; None sends no header


def form(
    purpose: str | None = "fine-tune", filename: str = "train.jsonl", body: bytes = CHAT, **extra: str
) -> dict:
    """A multipart form as the SDK sends it: text fields first, then the file."""
    fields: dict[str, Any] = {} if purpose is None else {"purpose": (None, purpose)}
    fields.update({name: (None, value) for name, value in extra.items()})
    fields["file"] = (filename, body)
    return fields


def upload_body(**overrides: Any) -> dict[str, Any]:
    return {"filename": "a.png", "purpose": "vision", "bytes": 3, "mime_type": "image/png", **overrides}


PURPOSES = "'assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals'"
NOT_MULTIPART = "This endpoint expects a multipart/form-data body"
MULTIPART_B = "multipart/form-data; boundary=B"
CUT_BODY = (
    b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nvision\r\n'
    b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\nhalf of the'
)
EXPIRES = {"expires_after[anchor]": "created_at"}
NO_FILE = f"No such File object: {MISSING_ID}"
OF_B = "No such File object: {file_of_b}"
PARTS = "POST uploads/{pending_upload}/parts"

EVAL_BODY: dict[str, Any] = {
    "data_source_config": {"type": "custom", "item_schema": {"type": "object"}},
    "testing_criteria": [
        {
            "type": "string_check",
            "name": "c",
            "input": "{{sample.output_text}}",
            "reference": "x",
            "operation": "eq",
        }
    ],
}
LABEL_MODEL_GRADER = {
    "type": "label_model", "name": "l", "model": "m", "input": [], "labels": ["a"], "passing_labels": ["a"]
}  # fmt: skip
STORED_COMPLETIONS = {"type": "stored_completions"}

# fmt: off
TABLE = {
    # POST /v1/files
    "wrong purpose": Bad("local", "POST files", 400, "purpose",
                         f"'fine-tune-results' is not one of {PURPOSES} - 'purpose'",
                         files=form("fine-tune-results")),
    "unknown purpose": Bad("local", "POST files", 400, "purpose", "'training' is not one of",
                           files=form("training")),
    "missing purpose": Bad("local", "POST files", 400, "purpose", "Missing required parameter: 'purpose'.",
                           files=form(None)),
    "missing file part": Bad("local", "POST files", 400, "file", "Missing required parameter: 'file'.",
                             files={"purpose": (None, "fine-tune")}),
    "fine-tune file not .jsonl": Bad("local", "POST files", 400, "file",
                                     "Invalid file format for Fine-Tuning API. Must be .jsonl "
                                     "(got filename 'train.csv').", files=form(filename="train.csv")),
    "fine-tune raw bytes": Bad("local", "POST files", 400, "file", "Invalid file format for Fine-Tuning API.",
                               files=form(filename="upload")),
    "oversize file": Bad("small", "POST files", 400, "file", "File is larger than 1024 bytes",
                         files=form(body=CHAT * 20)),
    "expires_after other anchor": Bad("local", "POST files", 400, "expires_after[anchor]",
                                      "expires_after.anchor must be 'created_at'.",
                                      files=form(**{"expires_after[anchor]": "last_accessed_at",
                                                    "expires_after[seconds]": "3600"})),
    "expires_after seconds not a number": Bad("local", "POST files", 400, "expires_after[seconds]",
                                              "'expires_after[seconds]' must be an integer.",
                                              files=form(**EXPIRES, **{"expires_after[seconds]": "x"})),
    "purpose not UTF-8": Bad("local", "POST files", 400, "purpose",
                             "Form field 'purpose' is not valid UTF-8.",
                             files={"purpose": (None, b"\xff\xfe"), "file": ("a.jsonl", CHAT)}),
    "JSON instead of multipart": Bad("local", "POST files", 400, "file", NOT_MULTIPART,
                                     json={"purpose": "fine-tune", "file": "x"}),
    "urlencoded instead of multipart": Bad("local", "POST files", 400, "file", NOT_MULTIPART,
                                           content=b"purpose=fine-tune",
                                           content_type="application/x-www-form-urlencoded"),
    "multipart without boundary": Bad("local", "POST files", 400, "file", NOT_MULTIPART,
                                      content=b"x", content_type="multipart/form-data"),
    "garbage multipart": Bad("local", "POST files", 400, "file", "Malformed multipart body",
                             content=b"this is not multipart", content_type=MULTIPART_B),
    "multipart cut before the end": Bad("local", "POST files", 400, "file", "Malformed multipart body",
                                        content=CUT_BODY, content_type=MULTIPART_B),
    # GET /v1/files
    "limit 0": Bad("local", "GET files", 400, "limit", "limit must be between 1 and 10000.",
                   params={"limit": 0}),
    "limit too large": Bad("local", "GET files", 400, "limit", "limit must be between 1 and 10000.",
                           params={"limit": 10001}),
    "limit not a number": Bad("local", "GET files", 400, "limit", "Invalid value for 'limit'",
                              params={"limit": "ten"}),
    "order not asc or desc": Bad("local", "GET files", 400, "order", "Invalid value for 'order'",
                                 params={"order": "newest"}),
    "after an unknown id": Bad("local", "GET files", 404, "after", NO_FILE, params={"after": MISSING_ID}),
    # unknown ids
    "retrieve unknown id": Bad("local", f"GET files/{MISSING_ID}", 404, "id", NO_FILE),
    "content of unknown id": Bad("local", f"GET files/{MISSING_ID}/content", 404, "id", NO_FILE),
    "delete unknown id": Bad("local", f"DELETE files/{MISSING_ID}", 404, "id", NO_FILE),
    # another project's file is exactly as missing
    "retrieve foreign file": Bad("keyed", "GET files/{file_of_b}", 404, "id", OF_B, key="key_a"),
    "content of foreign file": Bad("keyed", "GET files/{file_of_b}/content", 404, "id", OF_B, key="key_a"),
    "delete foreign file": Bad("keyed", "DELETE files/{file_of_b}", 404, "id", OF_B, key="key_a"),
    "after foreign file": Bad("keyed", "GET files", 404, "after", OF_B, params={"after": "{file_of_b}"},
                              key="key_a"),
    # authentication once keys exist
    "no key": Bad("keyed", "GET files", 401, None, "You didn't provide an API key.", key=None),
    "invalid key": Bad("keyed", "GET files", 401, None, "Incorrect API key provided: sk-ope",
                       code="invalid_api_key", key="sk-openft-not-a-real-key-0000"),
    "revoked key": Bad("keyed", "GET files", 401, None, "Incorrect API key provided:",
                       code="invalid_api_key", key="revoked_key"),
    "invalid key on upload": Bad("keyed", "POST files", 401, None, "Incorrect API key provided:",
                                 code="invalid_api_key", files=form(), key="wrong"),
    "no key on uploads": Bad("keyed", "POST uploads", 401, None, "You didn't provide an API key.",
                             json=upload_body(), key=None),
    # /v1/uploads
    "malformed JSON on uploads": Bad("local", "POST uploads", 400, None,
                                     "We could not parse the JSON body of your request.",
                                     content=b'{"filename": "a.jsonl", "purpose": ',
                                     content_type="application/json"),
    "uploads missing a field": Bad("local", "POST uploads", 400, "bytes",
                                   "Missing required parameter: 'bytes'.",
                                   json={"filename": "a.png", "purpose": "vision", "mime_type": "image/png"}),
    "uploads bytes not a number": Bad("local", "POST uploads", 400, "bytes", "Invalid value for 'bytes'",
                                      json=upload_body(bytes="many")),
    "uploads wrong purpose": Bad("local", "POST uploads", 400, "purpose", "'batch_output' is not one of",
                                 json=upload_body(purpose="batch_output")),
    "part not multipart": Bad("small", PARTS, 400, "data", NOT_MULTIPART, json={"data": "abc"}),
    "part without data": Bad("small", PARTS, 400, "data", "Missing required parameter: 'data'.",
                             files={"other": (None, "x")}),
    "part too large": Bad("small", PARTS, 400, "data", "Upload parts may be at most 512 bytes",
                          files={"data": ("upload", b"x" * 600)}),
    "part_ids not a list": Bad("small", "POST uploads/{pending_upload}/complete", 400, "part_ids",
                               "Invalid value for 'part_ids'", json={"part_ids": "part_1"}),
    "part for unknown upload": Bad("local", "POST uploads/upload_missing/parts", 404, "upload_id",
                                   "No such Upload object: upload_missing", files={"data": ("upload", b"x")}),
    # strings the database cannot hold: refused (or not found), the same on every backend
    "filename too long": Bad("local", "POST files", 400, "file", "",
                             files=form("vision", filename="x" * 600 + ".png")),
    "upload filename too long": Bad("local", "POST uploads", 400, "filename", "",
                                    json=upload_body(filename="x" * 600 + ".png")),
    "upload mime_type too long": Bad("local", "POST uploads", 400, "mime_type", "",
                                     json=upload_body(mime_type="image/" + "x" * 200)),
    "upload filename with NUL": Bad("local", "POST uploads", 400, "filename", "",
                                    json=upload_body(filename="a\x00.png")),
    "NUL in a file id": Bad("local", "GET files/file-%00abc", 400, None, "The URL contains a NUL character"),
    "NUL in a deleted id": Bad("local", "DELETE files/file-%00", 400, None,
                               "The URL contains a NUL character"),
    "NUL in a content id": Bad("local", "GET files/file-%00/content", 400, None,
                               "The URL contains a NUL character"),
    "NUL in after": Bad("local", "GET files", 400, None, "The URL contains a NUL character",
                        params={"after": "file-\x00"}),
    "NUL in an upload id": Bad("local", "POST uploads/upload_%00/cancel", 400, None,
                               "The URL contains a NUL character"),
    # /v1/evals
    "unknown eval": Bad("local", "GET evals/eval_missing", 404, "eval_id",
                        "No such Eval object: eval_missing"),
    "eval with a label_model grader without input": Bad("local", "POST evals", 400,
                                                        "testing_criteria[0].input",
                                          "Invalid testing_criteria[0]: input must be a non-empty list of "
                                          "messages.",
                                          json=EVAL_BODY | {"testing_criteria": [LABEL_MODEL_GRADER]}),
    "eval over stored completions": Bad("local", "POST evals", 400, "data_source_config.type",
                                        "openft does not support data_source_config of type "
                                        "'stored_completions'",
                                        json=EVAL_BODY | {"data_source_config": STORED_COMPLETIONS}),
    "eval without testing_criteria": Bad("local", "POST evals", 400, "testing_criteria",
                                         "Missing required parameter: 'testing_criteria'.",
                                         json={"data_source_config": EVAL_BODY["data_source_config"]}),
    "eval list by updated_at": Bad("local", "GET evals", 400, "order_by",
                                   "openft lists evals by created_at only.",
                                   params={"order_by": "updated_at"}),
    "runs of an unknown eval": Bad("local", "GET evals/eval_missing/runs", 404, "eval_id",
                                   "No such Eval object: eval_missing"),
    # routing
    "unknown route": Bad("local", "GET fine_tunes", 404, None, "Invalid URL (GET /v1/fine_tunes)"),
    "wrong method": Bad("local", "PUT files", 405, None, "Method PUT is not allowed for /v1/files"),
}
# fmt: on


def send(servers: Servers, bad: Bad) -> httpx.Response:
    server: LiveServer = getattr(servers, bad.server)
    names = {"file_of_b": servers.file_of_b, "pending_upload": servers.pending_upload}
    headers = {"content-type": bad.content_type} if bad.content_type else {}
    key = getattr(servers, bad.key) if bad.key in ("key_a", "key_b", "revoked_key") else bad.key
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    method, path = bad.request.split(" ", 1)
    params = {k: str(v).format(**names) for k, v in bad.params.items()} if bad.params else None
    with httpx.Client(base_url=server.base_url + "/", timeout=30) as http:
        return http.request(
            method,
            path.format(**names),
            headers=headers,
            params=params,
            files=bad.files,
            json=bad.json,
            content=bad.content,
        )


def settle(response: httpx.Response) -> None:
    """After a 5xx, wait for the server thread to finish logging its traceback before failing.

    CPython 3.11 shares ast.parse's depth counter between threads; pytest formatting a failure while
    the server formats a traceback dies with "SystemError: AST constructor recursion depth mismatch".
    """
    if response.status_code >= 500:
        time.sleep(0.5)


def assert_openai_error(response: httpx.Response) -> dict[str, Any]:
    """Every error: JSON with all four keys, a request id, and a 4xx status."""
    settle(response)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


@pytest.mark.parametrize("name", list(TABLE))
def test_bad_request_gets_the_exact_error(servers: Servers, name: str) -> None:
    bad = TABLE[name]
    names = {"file_of_b": servers.file_of_b, "pending_upload": servers.pending_upload}

    response = send(servers, bad)

    error = assert_openai_error(response)
    assert response.status_code == bad.status, error
    assert (error["type"], error["code"], error["param"]) == (bad.type, bad.code, bad.param), error
    assert error["message"].startswith(bad.message_start.format(**names)), error["message"]


def test_bad_requests_left_no_file_behind(servers: Servers) -> None:
    """None of the rejected uploads above was stored: the servers hold only the fixture's files."""
    for server, expected in ((servers.local, 0), (servers.small, 0), (servers.keyed, 1)):
        with server.ctx.db.session() as session:
            n_rows = session.scalar(select(func.count()).select_from(FileRow))
        blobs = [p.name for p in server.settings.files_dir.iterdir()]
        assert (n_rows, len(blobs)) == (expected, expected), (server.data_dir, blobs)


def test_a_purpose_filter_with_a_nul_is_refused_on_every_backend(servers: Servers) -> None:
    with servers.local.http() as http:
        response = http.get("files", params={"purpose": "fine-tune\x00"})
    settle(response)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"].startswith("The URL contains a NUL character")
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("purpose", ["assistants", "user_data"])
def test_downloads_refused_for_purpose(servers: Servers, purpose: str) -> None:
    client = servers.local.client()
    created = client.files.create(file=("doc.txt", b"secret notes"), purpose=purpose)  # type: ignore[arg-type]
    try:
        with servers.local.http() as http:
            response = http.get(f"files/{created.id}/content")

        assert response.status_code == 400
        assert assert_openai_error(response) == {
            "message": f"Not allowed to download files of purpose: {purpose}",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        assert client.files.retrieve(created.id).purpose == purpose
    finally:
        client.files.delete(created.id)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "uploads/{upload}/cancel"), ("DELETE", "files/{file}")],
)
def test_bodiless_post_and_delete_with_json_content_type(servers: Servers, method: str, path: str) -> None:
    """The SDK sends `content-type: application/json` with no body on cancel and delete."""
    client = servers.local.client()
    upload = client.uploads.create(bytes=3, filename="c.bin", mime_type="image/png", purpose="vision")
    created = client.files.create(file=("d.bin", b"abc"), purpose="vision")
    with servers.local.http() as http:
        response = http.request(
            method,
            path.format(upload=upload.id, file=created.id),
            headers={"content-type": "application/json", "content-length": "0"},
        )

    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"].startswith("req_")
    if method == "POST":
        assert response.json()["status"] == "cancelled"
        assert response.json()["id"] == upload.id
        client.files.delete(created.id)
    else:
        assert response.json() == {"id": created.id, "object": "file", "deleted": True}


def test_every_success_carries_a_request_id_and_json(servers: Servers) -> None:
    with servers.local.http() as http:
        responses = [http.get("files"), http.post("files", files=form())]
        responses.append(http.get(f"files/{responses[1].json()['id']}"))
        responses.append(http.delete(f"files/{responses[1].json()['id']}"))

    ids = set()
    for response in responses:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        ids.add(response.headers["x-request-id"])
    assert len(ids) == len(responses)


def test_sdk_sees_the_request_id_on_errors(servers: Servers) -> None:
    import openai

    client = servers.local.client()
    with pytest.raises(openai.NotFoundError) as caught:
        client.files.retrieve(MISSING_ID)

    raw = caught.value.response
    assert caught.value.request_id == raw.headers["x-request-id"]
    assert json.loads(raw.text)["error"]["param"] == "id"
