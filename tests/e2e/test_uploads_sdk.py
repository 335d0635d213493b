"""The Uploads API through the official openai SDK: chunked uploads, part order, checksums, states."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
import pytest
from e2e_data import PART_ID, UPLOAD_ID, api_message, assert_file_object, chat_jsonl
from openai import OpenAI
from sqlalchemy import update

from openft.store.tables import UploadRow

if TYPE_CHECKING:
    from conftest import LiveServer

UPLOAD_TTL_S = 3600


def assert_upload_object(
    upload: Any, *, filename: str, purpose: str, n_bytes: int, status: str, has_file: bool
) -> None:
    dumped = upload.model_dump()
    assert UPLOAD_ID.match(dumped["id"]), dumped["id"]
    assert int(time.time()) - 60 <= dumped["created_at"] <= int(time.time())
    assert dumped == {
        "id": dumped["id"],
        "object": "upload",
        "bytes": n_bytes,
        "created_at": dumped["created_at"],
        "expires_at": dumped["created_at"] + UPLOAD_TTL_S,
        "filename": filename,
        "purpose": purpose,
        "status": status,
        "file": dumped["file"] if has_file else None,
    }


def upload_parts(client: OpenAI, upload_id: str, chunks: list[bytes]) -> list[str]:
    part_ids = []
    for chunk in chunks:
        part = client.uploads.parts.create(upload_id=upload_id, data=chunk)
        assert PART_ID.match(part.id)
        assert part.object == "upload.part"
        assert part.upload_id == upload_id
        assert abs(part.created_at - time.time()) < 60
        part_ids.append(part.id)
    return part_ids


def new_upload(client: OpenAI, body: bytes, filename: str = "big.jsonl", purpose: str = "fine-tune") -> Any:
    return client.uploads.create(
        bytes=len(body),
        filename=filename,
        mime_type="application/jsonl",
        purpose=purpose,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("with_md5", [False, True])
def test_upload_file_chunked_from_a_path_gives_a_byte_identical_processed_file(
    shared_client: OpenAI, tmp_path: Path, with_md5: bool
) -> None:
    path = tmp_path / "chunked.jsonl"
    path.write_bytes(chat_jsonl(40))
    size = path.stat().st_size
    md5 = hashlib.md5(path.read_bytes()).hexdigest() if with_md5 else openai.omit

    upload = shared_client.uploads.upload_file_chunked(
        file=path, mime_type="application/jsonl", purpose="fine-tune", part_size=size // 5 + 1, md5=md5
    )

    assert_upload_object(
        upload, filename="chunked.jsonl", purpose="fine-tune", n_bytes=size, status="completed", has_file=True
    )
    assert upload.file is not None
    assert_file_object(upload.file, filename="chunked.jsonl", purpose="fine-tune", n_bytes=size)
    assert shared_client.files.retrieve(upload.file.id) == upload.file
    assert shared_client.files.content(upload.file.id).content == path.read_bytes()


def test_upload_file_chunked_from_bytes(shared_client: OpenAI) -> None:
    body = bytes(range(256)) * 40

    upload = shared_client.uploads.upload_file_chunked(
        file=body,
        filename="raw.bin",
        bytes=len(body),
        mime_type="image/png",
        purpose="vision",
        part_size=1000,
    )

    assert upload.status == "completed"
    assert upload.file is not None
    assert_file_object(upload.file, filename="raw.bin", purpose="vision", n_bytes=len(body))
    assert shared_client.files.content(upload.file.id).content == body


def test_parts_are_assembled_in_the_order_of_part_ids(shared_client: OpenAI) -> None:
    chunks = [b"part-one;", b"part-two;", b"part-three;"]
    upload = new_upload(shared_client, b"".join(chunks), filename="order.txt", purpose="user_data")
    assert_upload_object(
        upload,
        filename="order.txt",
        purpose="user_data",
        n_bytes=sum(map(len, chunks)),
        status="pending",
        has_file=False,
    )
    part_ids = upload_parts(shared_client, upload.id, chunks)

    completed = shared_client.uploads.complete(upload_id=upload.id, part_ids=part_ids[::-1])

    assert completed.id == upload.id
    assert completed.status == "completed"
    assert completed.file is not None
    stored = shared_client.files.retrieve(completed.file.id)
    assert stored == completed.file
    # Content of user_data files cannot be downloaded; the bytes are checked through a second upload.
    vision = new_upload(shared_client, b"".join(chunks), filename="order.bin", purpose="vision")
    vision_parts = upload_parts(shared_client, vision.id, chunks)
    done = shared_client.uploads.complete(upload_id=vision.id, part_ids=vision_parts[::-1])
    assert done.file is not None
    assert shared_client.files.content(done.file.id).content == b"part-three;part-two;part-one;"


def test_wrong_md5_is_rejected_and_the_upload_can_still_complete(shared_server: LiveServer) -> None:
    client = shared_server.client()
    body = chat_jsonl(5)
    upload = new_upload(client, body)
    part_ids = upload_parts(client, upload.id, [body[:100], body[100:]])
    n_blobs_before = len(list(shared_server.settings.files_dir.iterdir()))

    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.complete(upload_id=upload.id, part_ids=part_ids, md5="0" * 32)

    assert caught.value.param == "md5"
    assert caught.value.type == "invalid_request_error"
    assert f"does not match the assembled file (md5 {hashlib.md5(body).hexdigest()})" in api_message(
        caught.value
    )
    assert len(list(shared_server.settings.files_dir.iterdir())) == n_blobs_before
    completed = client.uploads.complete(
        upload_id=upload.id, part_ids=part_ids, md5=hashlib.md5(body).hexdigest().upper()
    )
    assert completed.status == "completed"
    assert completed.file is not None
    assert client.files.content(completed.file.id).content == body


@pytest.mark.parametrize("declared_delta", [-1, 1])
def test_parts_that_do_not_add_up_to_bytes_are_rejected(shared_client: OpenAI, declared_delta: int) -> None:
    body = chat_jsonl(2)
    upload = shared_client.uploads.create(
        bytes=len(body) + declared_delta,
        filename="short.jsonl",
        mime_type="application/jsonl",
        purpose="fine-tune",
    )
    part_ids = upload_parts(shared_client, upload.id, [body])

    with pytest.raises(openai.BadRequestError) as caught:
        shared_client.uploads.complete(upload_id=upload.id, part_ids=part_ids)

    assert caught.value.param == "part_ids"
    assert api_message(caught.value) == (
        f"The parts add up to {len(body)} bytes, but the upload was created with bytes="
        f"{len(body) + declared_delta}. Send the missing parts or create a new upload with the right size."
    )


def test_complete_rejects_empty_duplicate_and_foreign_part_ids(shared_client: OpenAI) -> None:
    body = b"abcdef"
    upload = new_upload(shared_client, body, filename="x.bin", purpose="vision")
    other = new_upload(shared_client, body, filename="y.bin", purpose="vision")
    (part,) = upload_parts(shared_client, upload.id, [body])
    (foreign,) = upload_parts(shared_client, other.id, [body])

    for part_ids, message in [
        ([], "part_ids must list at least one part, in order."),
        ([part, part], "part_ids lists a part more than once."),
        ([foreign], f"Part {foreign} does not belong to this upload."),
        (["part_nonexistent"], "Part part_nonexistent does not belong to this upload."),
    ]:
        with pytest.raises(openai.BadRequestError) as caught:
            shared_client.uploads.complete(upload_id=upload.id, part_ids=part_ids)
        assert (caught.value.param, api_message(caught.value)) == ("part_ids", message)

    assert shared_client.uploads.complete(upload_id=upload.id, part_ids=[part]).status == "completed"


def test_cancel_then_no_parts_and_no_complete(shared_server: LiveServer) -> None:
    client = shared_server.client()
    body = b"0123456789"
    upload = new_upload(client, body, filename="c.bin", purpose="vision")
    n_part_blobs = len(list(shared_server.settings.uploads_dir.iterdir()))
    part_ids = upload_parts(client, upload.id, [body[:5], body[5:]])
    assert len(list(shared_server.settings.uploads_dir.iterdir())) == n_part_blobs + 2

    cancelled = client.uploads.cancel(upload.id)

    assert_upload_object(
        cancelled, filename="c.bin", purpose="vision", n_bytes=10, status="cancelled", has_file=False
    )
    assert cancelled.id == upload.id
    assert len(list(shared_server.settings.uploads_dir.iterdir())) == n_part_blobs
    expected = f"Cannot {{}} upload {upload.id}: its status is 'cancelled'."
    for action, call in [
        ("add parts to", lambda: client.uploads.parts.create(upload_id=upload.id, data=b"more")),
        ("complete", lambda: client.uploads.complete(upload_id=upload.id, part_ids=part_ids)),
        ("cancel", lambda: client.uploads.cancel(upload.id)),
    ]:
        with pytest.raises(openai.BadRequestError) as caught:
            call()
        assert caught.value.param == "upload_id"
        assert api_message(caught.value).startswith(expected.format(action))


def test_no_parts_after_complete(shared_client: OpenAI) -> None:
    body = b"complete me"
    upload = new_upload(shared_client, body, filename="done.bin", purpose="vision")
    part_ids = upload_parts(shared_client, upload.id, [body])
    completed = shared_client.uploads.complete(upload_id=upload.id, part_ids=part_ids)
    assert completed.file is not None

    for action, call in [
        ("add parts to", lambda: shared_client.uploads.parts.create(upload_id=upload.id, data=b"late")),
        ("complete", lambda: shared_client.uploads.complete(upload_id=upload.id, part_ids=part_ids)),
        ("cancel", lambda: shared_client.uploads.cancel(upload.id)),
    ]:
        with pytest.raises(openai.BadRequestError) as caught:
            call()
        assert caught.value.param == "upload_id"
        assert api_message(caught.value).startswith(
            f"Cannot {action} upload {upload.id}: its status is 'completed'."
        )
    assert shared_client.files.content(completed.file.id).content == body


def test_an_expired_upload_takes_no_parts_and_cannot_complete(shared_server: LiveServer) -> None:
    client = shared_server.client()
    body = b"too late"
    upload = new_upload(client, body, filename="late.bin", purpose="vision")
    part_ids = upload_parts(client, upload.id, [body])
    with shared_server.ctx.db.session() as session:  # time travel: the hour is over
        session.execute(
            update(UploadRow).where(UploadRow.id == upload.id).values(expires_at=int(time.time()) - 1)
        )

    for action, call in [
        ("add parts to", lambda: client.uploads.parts.create(upload_id=upload.id, data=b"x")),
        ("complete", lambda: client.uploads.complete(upload_id=upload.id, part_ids=part_ids)),
        ("cancel", lambda: client.uploads.cancel(upload.id)),
    ]:
        with pytest.raises(openai.BadRequestError) as caught:
            call()
        assert caught.value.param == "upload_id"
        assert api_message(caught.value).startswith(
            f"Cannot {action} upload {upload.id}: its status is 'expired'."
        )


def test_an_upload_created_with_no_ttl_left_is_expired_at_once(server_factory: Any) -> None:
    client = server_factory(upload_ttl_s=0).client()

    upload = new_upload(client, b"abc", filename="a.bin", purpose="vision")

    assert upload.status == "expired"
    assert upload.expires_at == upload.created_at
    with pytest.raises(openai.BadRequestError) as caught:
        client.uploads.parts.create(upload_id=upload.id, data=b"abc")
    assert caught.value.param == "upload_id"


def test_upload_expires_after_reaches_the_file(shared_client: OpenAI) -> None:
    body = b"expiring upload"
    upload = shared_client.uploads.create(
        bytes=len(body),
        filename="e.bin",
        mime_type="image/png",
        purpose="vision",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )
    part_ids = upload_parts(shared_client, upload.id, [body])

    completed = shared_client.uploads.complete(upload_id=upload.id, part_ids=part_ids)

    assert completed.file is not None
    assert completed.file.expires_at == completed.file.created_at + 7200


def test_a_batch_upload_gets_the_batch_default_expiry(shared_client: OpenAI) -> None:
    body = b'{"custom_id": "1"}\n'
    upload = new_upload(shared_client, body, filename="b.jsonl", purpose="batch")
    completed = shared_client.uploads.complete(
        upload_id=upload.id, part_ids=upload_parts(shared_client, upload.id, [body])
    )

    assert completed.file is not None
    assert completed.file.expires_at == completed.file.created_at + 30 * 24 * 3600


def test_a_completed_fine_tune_upload_with_bad_data_gives_an_error_file(shared_client: OpenAI) -> None:
    body = chat_jsonl(2) + b"not json\n"
    upload = new_upload(shared_client, body, filename="bad.jsonl")

    completed = shared_client.uploads.complete(
        upload_id=upload.id, part_ids=upload_parts(shared_client, upload.id, [body[:50], body[50:]])
    )

    assert completed.status == "completed"
    assert completed.file is not None
    assert completed.file.status == "error"
    assert completed.file.status_details is not None
    assert completed.file.status_details.startswith("line 3 is not valid JSON")
    assert shared_client.files.retrieve(completed.file.id) == completed.file


@pytest.mark.parametrize(
    ("kwargs", "param", "message_start"),
    [
        (
            {"purpose": "fine-tune", "filename": "data.csv"},
            "filename",
            "Invalid file format for Fine-Tuning API.",
        ),
        ({"purpose": "fine-tune-results"}, "purpose", "'fine-tune-results' is not one of"),
        ({"bytes": -1}, "bytes", "bytes must be between 0 and"),
        ({"bytes": 8 * 1024**3 + 1}, "bytes", "bytes must be between 0 and"),
        (
            {"expires_after": {"anchor": "created_at", "seconds": 60}},
            "expires_after[seconds]",
            "expires_after",
        ),
    ],
)
def test_create_upload_validation(
    shared_client: OpenAI, kwargs: dict[str, Any], param: str, message_start: str
) -> None:
    arguments: dict[str, Any] = {
        "bytes": 10,
        "filename": "ok.jsonl",
        "mime_type": "application/jsonl",
        "purpose": "fine-tune",
    }
    arguments.update(kwargs)

    with pytest.raises(openai.BadRequestError) as caught:
        shared_client.uploads.create(**arguments)

    assert caught.value.param == param
    assert api_message(caught.value).startswith(message_start)


def test_unknown_upload_is_404(shared_client: OpenAI) -> None:
    for call in [
        lambda: shared_client.uploads.parts.create(upload_id="upload_missing", data=b"x"),
        lambda: shared_client.uploads.complete(upload_id="upload_missing", part_ids=["part_x"]),
        lambda: shared_client.uploads.cancel("upload_missing"),
    ]:
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        assert caught.value.body == {
            "message": "No such Upload object: upload_missing",
            "type": "invalid_request_error",
            "param": "upload_id",
            "code": None,
        }
