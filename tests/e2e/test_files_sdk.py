"""The Files API through the official openai SDK: every call, full objects."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import TYPE_CHECKING

import openai
import pytest
from e2e_data import api_message, assert_file_object, chat_jsonl, chat_line, prompt_completion_line
from openai import OpenAI

if TYPE_CHECKING:
    from conftest import LiveServer

ALL_CREATE_PURPOSES = ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]
THIRTY_DAYS_S = 30 * 24 * 3600


@pytest.mark.parametrize("purpose", ALL_CREATE_PURPOSES)
def test_create_every_purpose_returns_the_full_file_object(shared_client: OpenAI, purpose: str) -> None:
    started = int(time.time())
    filename = "train.jsonl" if purpose == "fine-tune" else f"{purpose}-input.jsonl"
    body = chat_jsonl(3)

    created = shared_client.files.create(file=(filename, body), purpose=purpose)  # type: ignore[arg-type]

    expires = THIRTY_DAYS_S if purpose == "batch" else None
    assert_file_object(
        created,
        filename=filename,
        purpose=purpose,
        n_bytes=len(body),
        expires_after_s=expires,
        not_before=started,
    )
    assert shared_client.files.retrieve(created.id) == created


def test_create_from_a_path_and_from_an_open_file_keeps_the_basename(
    shared_client: OpenAI, tmp_path: Path
) -> None:
    path = tmp_path / "from-disk.jsonl"
    path.write_bytes(chat_jsonl(2))

    from_path = shared_client.files.create(file=path, purpose="fine-tune")
    with path.open("rb") as handle:
        from_handle = shared_client.files.create(file=handle, purpose="fine-tune")

    for created in (from_path, from_handle):
        assert_file_object(
            created, filename="from-disk.jsonl", purpose="fine-tune", n_bytes=path.stat().st_size
        )
        assert shared_client.files.content(created.id).content == path.read_bytes()
    assert from_path.id != from_handle.id


def test_raw_bytes_get_the_filename_upload(shared_client: OpenAI) -> None:
    body = b"plain bytes, no name"

    created = shared_client.files.create(file=body, purpose="user_data")

    assert_file_object(created, filename="upload", purpose="user_data", n_bytes=len(body))


def test_content_is_byte_identical_for_every_byte_value(shared_client: OpenAI) -> None:
    body = bytes(range(256)) * 4099 + b"\r\n\x00tail"  # binary, CRLF, NUL; not a multiple of any chunk

    created = shared_client.files.create(file=("blob.bin", body), purpose="vision")
    downloaded = shared_client.files.content(created.id)

    assert downloaded.content == body
    assert downloaded.response.headers["content-length"] == str(len(body))


def test_content_of_a_file_with_a_non_latin_name(shared_client: OpenAI) -> None:
    body = chat_jsonl(1)
    created = shared_client.files.create(file=("训练 données.jsonl", body), purpose="fine-tune")

    assert created.filename == "训练 données.jsonl"
    assert shared_client.files.content(created.id).content == body


def test_wait_for_processing_returns_the_processed_file(shared_client: OpenAI) -> None:
    created = shared_client.files.create(file=("wait.jsonl", chat_jsonl(2)), purpose="fine-tune")

    waited = shared_client.files.wait_for_processing(created.id, poll_interval=0.01, max_wait_seconds=5)

    assert waited == created
    assert waited.status == "processed"


def test_delete_then_every_call_is_404(shared_client: OpenAI) -> None:
    created = shared_client.files.create(file=("gone.jsonl", chat_jsonl(1)), purpose="fine-tune")

    deleted = shared_client.files.delete(created.id)

    assert deleted.model_dump() == {"id": created.id, "object": "file", "deleted": True}
    calls = [shared_client.files.retrieve, shared_client.files.content, shared_client.files.delete]
    for call in calls:
        with pytest.raises(openai.NotFoundError) as caught:
            call(created.id)
        assert caught.value.status_code == 404
        assert caught.value.body == {
            "message": f"No such File object: {created.id}",
            "type": "invalid_request_error",
            "param": "id",
            "code": None,
        }
        assert caught.value.param == "id"
        assert caught.value.request_id and caught.value.request_id.startswith("req_")
    assert created.id not in {f.id for f in shared_client.files.list(purpose="fine-tune")}


@pytest.mark.parametrize("seconds", [3600, 86400, THIRTY_DAYS_S])
def test_expires_after_sets_expires_at(shared_client: OpenAI, seconds: int) -> None:
    created = shared_client.files.create(
        file=("expiring.jsonl", chat_jsonl(1)),
        purpose="fine-tune",
        expires_after={"anchor": "created_at", "seconds": seconds},
    )

    assert_file_object(
        created,
        filename="expiring.jsonl",
        purpose="fine-tune",
        n_bytes=len(chat_jsonl(1)),
        expires_after_s=seconds,
    )
    assert shared_client.files.retrieve(created.id).expires_at == created.created_at + seconds


def test_expires_after_overrides_the_batch_default(shared_client: OpenAI) -> None:
    created = shared_client.files.create(
        file=("batch.jsonl", b"{}\n"),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )

    assert created.expires_at == created.created_at + 7200


@pytest.mark.parametrize("seconds", [0, 3599, THIRTY_DAYS_S + 1])
def test_expires_after_out_of_range_is_rejected(shared_client: OpenAI, seconds: int) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        shared_client.files.create(
            file=("x.jsonl", chat_jsonl(1)),
            purpose="fine-tune",
            expires_after={"anchor": "created_at", "seconds": seconds},
        )

    assert caught.value.param == "expires_after[seconds]"
    assert "between 3600 and 2592000" in api_message(caught.value)


# -- listing and pagination: a server of the test's own, so the list holds exactly what it made --


PURPOSES_IN_ORDER = ["fine-tune", "batch", "fine-tune", "vision", "fine-tune", "batch"]


def create_six_files(client: OpenAI) -> list[str]:
    """Six files in creation order: fine-tune, batch, fine-tune, vision, fine-tune, batch."""
    ids = []
    for i, purpose in enumerate(PURPOSES_IN_ORDER):
        body = prompt_completion_line(i) if purpose == "fine-tune" else chat_line(i)
        ids.append(client.files.create(file=(f"f{i}.jsonl", body), purpose=purpose).id)  # type: ignore[arg-type]
    return ids


@pytest.fixture(scope="module")
def six_files(module_server: LiveServer) -> tuple[OpenAI, list[str]]:
    """A server of this module's own holding exactly six files; the tests that use it only read."""
    client = module_server.client()
    return client, create_six_files(client)


def test_list_defaults_to_newest_first_with_all_envelope_keys(six_files: tuple[OpenAI, list[str]]) -> None:
    client, ids = six_files

    page = client.files.list()

    assert [f.id for f in page.data] == ids[::-1]
    assert page.object == "list"
    assert page.has_more is False
    assert page.first_id == ids[-1]
    assert page.last_id == ids[0]
    assert page.data[0] == client.files.retrieve(ids[-1])


def test_list_ascending(six_files: tuple[OpenAI, list[str]]) -> None:
    client, ids = six_files

    page = client.files.list(order="asc")

    assert [f.id for f in page.data] == ids
    assert (page.first_id, page.last_id, page.has_more) == (ids[0], ids[-1], False)


def test_list_filters_by_purpose(six_files: tuple[OpenAI, list[str]]) -> None:
    client, ids = six_files

    fine_tune = client.files.list(purpose="fine-tune", order="asc")
    batch = client.files.list(purpose="batch", order="asc")
    assistants = client.files.list(purpose="assistants")

    assert [f.id for f in fine_tune.data] == [ids[0], ids[2], ids[4]]
    assert {f.purpose for f in fine_tune.data} == {"fine-tune"}
    assert [f.id for f in batch.data] == [ids[1], ids[5]]
    assert assistants.model_dump() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_list_pages_with_limit_and_after_down_to_an_empty_page(
    six_files: tuple[OpenAI, list[str]], order: str
) -> None:
    client, ids = six_files
    expected = ids if order == "asc" else ids[::-1]

    first = client.files.list(limit=4, order=order)  # type: ignore[arg-type]
    second = client.files.list(limit=4, order=order, after=first.last_id)  # type: ignore[arg-type]
    past_the_end = client.files.list(limit=4, order=order, after=second.last_id)  # type: ignore[arg-type]

    assert [f.id for f in first.data] == expected[:4]
    assert (first.first_id, first.last_id, first.has_more) == (expected[0], expected[3], True)
    assert [f.id for f in second.data] == expected[4:]
    assert (second.first_id, second.last_id, second.has_more) == (expected[4], expected[5], False)
    assert past_the_end.data == []
    assert (past_the_end.first_id, past_the_end.last_id, past_the_end.has_more) == (None, None, False)


def test_list_has_more_is_false_when_the_page_is_exactly_full(six_files: tuple[OpenAI, list[str]]) -> None:
    client, ids = six_files

    page = client.files.list(limit=6)

    assert [f.id for f in page.data] == ids[::-1]
    assert page.has_more is False


def test_list_after_with_purpose_pages_within_that_purpose(six_files: tuple[OpenAI, list[str]]) -> None:
    client, ids = six_files

    page = client.files.list(purpose="fine-tune", order="asc", limit=1, after=ids[0])

    assert [f.id for f in page.data] == [ids[2]]
    assert page.has_more is True


def test_auto_iteration_follows_pages_to_the_end(six_files: tuple[OpenAI, list[str]]) -> None:
    client, ids = six_files

    seen = [f.id for f in client.files.list(limit=2)]
    fine_tune_seen = [f.id for f in client.files.list(limit=2, purpose="fine-tune", order="asc")]

    assert seen == ids[::-1]
    assert fine_tune_seen == [ids[0], ids[2], ids[4]]


def test_iter_pages_fetches_exactly_the_pages(six_files: tuple[OpenAI, list[str]]) -> None:
    client, ids = six_files

    pages = list(client.files.list(limit=4, order="asc").iter_pages())

    assert [[f.id for f in page.data] for page in pages] == [ids[:4], ids[4:]]


def test_deleted_files_leave_the_list_and_the_pages_stay_consistent(openai_client: OpenAI) -> None:
    ids = create_six_files(openai_client)
    openai_client.files.delete(ids[1])
    openai_client.files.delete(ids[4])

    seen = [f.id for f in openai_client.files.list(limit=2, order="asc")]
    page = openai_client.files.list(limit=2, order="asc", after=ids[2])

    assert seen == [ids[0], ids[2], ids[3], ids[5]]
    assert [f.id for f in page.data] == [ids[3], ids[5]]
    assert page.has_more is False


def test_after_a_deleted_id_is_404_with_param_after(openai_client: OpenAI) -> None:
    ids = create_six_files(openai_client)
    openai_client.files.delete(ids[2])

    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.files.list(after=ids[2])

    assert caught.value.body == {
        "message": f"No such File object: {ids[2]}",
        "type": "invalid_request_error",
        "param": "after",
        "code": None,
    }


def test_upload_from_a_file_like_object_streams_identical_bytes(shared_client: OpenAI) -> None:
    body = chat_jsonl(200)

    created = shared_client.files.create(file=("stream.jsonl", io.BytesIO(body)), purpose="fine-tune")

    assert created.bytes == len(body)
    assert shared_client.files.content(created.id).read() == body
