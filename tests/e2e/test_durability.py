"""Data survives restarts, and an interrupted upload leaves nothing behind: a blob and its row or neither."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from e2e_data import chat_jsonl
from openai import OpenAI
from sqlalchemy import select, update

from openft.store.tables import FileRow, UploadPartRow, UploadRow

if TYPE_CHECKING:
    from conftest import LiveServer, ServerFactory


def snapshot(client: OpenAI) -> tuple[list[dict], dict[str, bytes]]:
    """Everything a client can see: the full list, and the bytes of each downloadable file."""
    files = [f.model_dump() for f in client.files.list(limit=2)]
    contents = {
        f["id"]: client.files.content(f["id"]).content
        for f in files
        if f["purpose"] not in ("assistants", "user_data")
    }
    for f in files:
        assert client.files.retrieve(f["id"]).model_dump() == f
    return files, contents


def fill(client: OpenAI, tmp_path: Path) -> None:
    client.files.create(file=("train.jsonl", chat_jsonl(20)), purpose="fine-tune")
    client.files.create(file=("broken.jsonl", b"{not json\n"), purpose="fine-tune")
    client.files.create(file=("image.png", bytes(range(256)) * 100), purpose="vision")
    client.files.create(file=("notes.txt", b"private"), purpose="user_data")
    client.files.create(
        file=("batch.jsonl", b"{}\n"),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    big = tmp_path / "chunked.jsonl"
    big.write_bytes(chat_jsonl(100))
    client.uploads.upload_file_chunked(
        file=big, mime_type="application/jsonl", purpose="fine-tune", part_size=4096
    )


def test_restart_keeps_every_file_byte_for_byte(live_server: LiveServer, tmp_path: Path) -> None:
    fill(live_server.client(), tmp_path)
    before = snapshot(live_server.client())
    assert len(before[0]) == 6

    live_server.restart()

    assert snapshot(live_server.client()) == before


def test_a_second_server_on_the_same_data_dir_sees_and_shares_everything(
    live_server: LiveServer, server_factory: ServerFactory, tmp_path: Path
) -> None:
    first = live_server.client()
    fill(first, tmp_path)

    second_server = server_factory(data_dir=live_server.data_dir)
    second = second_server.client()
    made_by_second = second.files.create(file=("second.jsonl", chat_jsonl(2)), purpose="fine-tune")

    assert snapshot(second) == snapshot(first)
    assert first.files.retrieve(made_by_second.id) == made_by_second
    first.files.delete(made_by_second.id)
    assert made_by_second.id not in {f.id for f in second.files.list()}


def test_every_row_has_its_blob_and_every_blob_its_row(live_server: LiveServer, tmp_path: Path) -> None:
    fill(live_server.client(), tmp_path)
    with live_server.ctx.db.session() as session:
        rows = list(session.scalars(select(FileRow)))
        n_parts = len(list(session.scalars(select(UploadPartRow))))

    blobs = {p.name: p for p in live_server.settings.files_dir.iterdir()}
    assert sorted(blobs) == sorted(row.blob_name for row in rows)
    for row in rows:
        data = blobs[row.blob_name].read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (row.bytes, row.sha256)
    # A completed upload leaves no parts behind, neither rows nor blobs.
    assert n_parts == 0
    assert list(live_server.settings.uploads_dir.iterdir()) == []


# -- a client that goes away mid-upload --


def send_half_and_hang_up(server: LiveServer, path: str, body: bytes, boundary: str) -> None:
    """Announce the whole body, send half of it, wait until the server is writing it, then close."""
    port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
    head = (
        f"POST /v1/{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer test\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + body[: len(body) // 2])
        time.sleep(0.3)


def wait_until_empty(directory: Path, timeout_s: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while (left := [p.name for p in directory.iterdir()]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def multipart(boundary: str, fields: dict[str, str], file_field: str, data: bytes) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="x.jsonl"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts)


def test_a_file_upload_cut_off_midway_leaves_no_row_and_no_blob(live_server: LiveServer) -> None:
    body = multipart("cut", {"purpose": "fine-tune"}, "file", chat_jsonl(20_000))  # about 3 MB

    send_half_and_hang_up(live_server, "files", body, "cut")

    assert wait_until_empty(live_server.settings.files_dir) == []
    client = live_server.client()
    assert client.files.list().data == []
    # The server is still healthy and takes the next upload whole.
    created = client.files.create(file=("next.jsonl", chat_jsonl(3)), purpose="fine-tune")
    assert client.files.content(created.id).content == chat_jsonl(3)
    assert [p.name for p in live_server.settings.files_dir.iterdir()] != []


def test_an_upload_part_cut_off_midway_leaves_no_part(live_server: LiveServer) -> None:
    client = live_server.client()
    data = chat_jsonl(20_000)
    upload = client.uploads.create(
        bytes=len(data), filename="big.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    )
    body = multipart("cut", {}, "data", data)

    send_half_and_hang_up(live_server, f"uploads/{upload.id}/parts", body, "cut")

    assert wait_until_empty(live_server.settings.uploads_dir) == []
    with live_server.ctx.db.session() as session:
        assert list(session.scalars(select(UploadPartRow))) == []
    part = client.uploads.parts.create(upload_id=upload.id, data=data)
    done = client.uploads.complete(upload_id=upload.id, part_ids=[part.id])
    assert done.file is not None
    assert client.files.content(done.file.id).content == data


def test_a_client_disconnect_is_not_logged_as_a_server_error(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An aborted upload is the client's doing: no 'Exception in ASGI application' traceback."""
    body = multipart("cut", {"purpose": "vision"}, "file", b"x" * 2_000_000)
    with caplog.at_level(logging.WARNING):
        send_half_and_hang_up(live_server, "files", body, "cut")
        assert wait_until_empty(live_server.settings.files_dir) == []
        time.sleep(0.1)

    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def test_a_restart_sweeps_abandoned_temp_files_and_expired_uploads(live_server: LiveServer) -> None:
    """What a crash or an abandoned upload leaves on disk is removed when the server starts again."""
    client = live_server.client()
    kept = client.files.create(file=("kept.jsonl", chat_jsonl(1)), purpose="fine-tune")
    upload = client.uploads.create(bytes=4, filename="a.bin", mime_type="image/png", purpose="vision")
    client.uploads.parts.create(upload_id=upload.id, data=b"abcd")
    with live_server.ctx.db.session() as session:  # the upload's hour is long over
        session.execute(
            update(UploadRow).where(UploadRow.id == upload.id).values(expires_at=int(time.time()) - 7200)
        )
    settings = live_server.settings
    leftovers = [settings.files_dir / ".tmp-crashed", settings.uploads_dir / ".tmp-crashed-part"]
    for path in leftovers:
        path.write_bytes(b"half written")
    two_hours_ago = time.time() - 7200
    for path in [*settings.files_dir.iterdir(), *settings.uploads_dir.iterdir()]:
        os.utime(path, (two_hours_ago, two_hours_ago))

    live_server.restart()

    with live_server.ctx.db.session() as session:
        blob_name = session.scalar(select(FileRow.blob_name).where(FileRow.id == kept.id))
    assert [p.name for p in settings.files_dir.iterdir()] == [blob_name]
    assert [p.name for p in settings.uploads_dir.iterdir()] == []
    assert live_server.client().files.content(kept.id).content == chat_jsonl(1)
