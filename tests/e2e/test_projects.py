"""API keys and projects: every object belongs to one project, and other projects never see it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import openai
import pytest
from e2e_data import api_message, chat_jsonl

if TYPE_CHECKING:
    from conftest import LiveServer, ServerFactory


def test_two_projects_never_see_each_others_files(live_server: LiveServer) -> None:
    alpha = live_server.client(live_server.create_key("alpha"))
    beta = live_server.client(live_server.create_key("beta"))
    alpha_ids = [
        alpha.files.create(file=(f"a{i}.jsonl", chat_jsonl(i + 1)), purpose="fine-tune").id for i in range(3)
    ]
    beta_ids = [
        beta.files.create(file=(f"b{i}.jsonl", chat_jsonl(1)), purpose="fine-tune").id for i in range(2)
    ]
    beta_ids.append(beta.files.create(file=("v.png", b"png"), purpose="vision").id)

    assert [f.id for f in alpha.files.list(order="asc")] == alpha_ids
    assert [f.id for f in alpha.files.list(limit=1, order="asc")] == alpha_ids  # paging stays inside
    assert [f.id for f in beta.files.list(order="asc")] == beta_ids
    assert [f.id for f in beta.files.list(purpose="fine-tune", order="asc")] == beta_ids[:2]
    assert alpha.files.list(purpose="vision").data == []
    for foreign in beta_ids:
        with pytest.raises(openai.NotFoundError) as caught:
            alpha.files.retrieve(foreign)
        assert api_message(caught.value) == f"No such File object: {foreign}"
        with pytest.raises(openai.NotFoundError):
            alpha.files.delete(foreign)
        with pytest.raises(openai.NotFoundError):
            alpha.files.content(foreign)
    assert [f.id for f in beta.files.list(order="asc")] == beta_ids  # nothing of beta's was touched


def test_another_projects_upload_is_missing(live_server: LiveServer) -> None:
    alpha = live_server.client(live_server.create_key("alpha"))
    beta = live_server.client(live_server.create_key("beta"))
    upload = beta.uploads.create(bytes=3, filename="b.bin", mime_type="image/png", purpose="vision")
    part = beta.uploads.parts.create(upload_id=upload.id, data=b"abc")

    for call in [
        lambda: alpha.uploads.parts.create(upload_id=upload.id, data=b"abc"),
        lambda: alpha.uploads.complete(upload_id=upload.id, part_ids=[part.id]),
        lambda: alpha.uploads.cancel(upload.id),
    ]:
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        assert caught.value.body == {
            "message": f"No such Upload object: {upload.id}",
            "type": "invalid_request_error",
            "param": "upload_id",
            "code": None,
        }

    completed = beta.uploads.complete(upload_id=upload.id, part_ids=[part.id])
    assert completed.status == "completed"
    assert completed.file is not None
    assert alpha.files.list().data == []


def test_the_sdk_raises_authentication_error_for_a_wrong_key(live_server: LiveServer) -> None:
    live_server.create_key("alpha")
    client = live_server.client("sk-openft-wrongwrongwrong")

    with pytest.raises(openai.AuthenticationError) as caught:
        client.files.list()

    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert caught.value.type == "invalid_request_error"
    assert caught.value.param is None
    assert api_message(caught.value).startswith("Incorrect API key provided: sk-ope")
    assert "wrongwrongwrong" not in api_message(caught.value)  # the key is redacted
    assert caught.value.request_id is not None


def test_local_mode_accepts_any_token_until_the_first_key(live_server: LiveServer) -> None:
    anyone = live_server.client("anything-at-all")
    made_locally = anyone.files.create(file=("local.jsonl", chat_jsonl(1)), purpose="fine-tune")
    assert live_server.client("something-else").files.retrieve(made_locally.id) == made_locally

    personal_key = live_server.create_key("personal")  # local mode's project is called "personal"
    other_key = live_server.create_key("other")

    with pytest.raises(openai.AuthenticationError):
        anyone.files.list()
    assert [f.id for f in live_server.client(personal_key).files.list()] == [made_locally.id]
    assert live_server.client(other_key).files.list().data == []


def test_revoking_the_last_key_keeps_requiring_keys(live_server: LiveServer) -> None:
    from openft.services.auth import create_key, revoke_key

    key, info = create_key(live_server.ctx, "alpha")
    alpha = live_server.client(key)
    secret = alpha.files.create(file=("s.jsonl", chat_jsonl(1)), purpose="fine-tune")
    revoke_key(live_server.ctx, info.id)  # no active key is left

    # A key has existed, so the server does not fall back to local mode: nobody is served.
    with pytest.raises(openai.AuthenticationError) as revoked:
        alpha.files.retrieve(secret.id)
    assert "has been revoked" in api_message(revoked.value)
    with pytest.raises(openai.AuthenticationError):
        live_server.client("anything").files.list()
    assert live_server.http(api_key=None).get("files").status_code == 401


def test_local_mode_on_returns_after_the_last_key_but_revoked_keys_stay_out(
    server_factory: ServerFactory,
) -> None:
    from openft.services.auth import create_key, revoke_key

    server = server_factory(local_mode=True)
    key, info = create_key(server.ctx, "alpha")
    secret = server.client(key).files.create(file=("s.jsonl", chat_jsonl(1)), purpose="fine-tune")
    with pytest.raises(openai.AuthenticationError):  # while a key is active, keys are required
        server.client("anything").files.list()
    revoke_key(server.ctx, info.id)

    # Requests without a valid key act for "personal", which cannot see alpha's files ...
    anyone = server.client("anything")
    assert anyone.files.list().data == []
    with pytest.raises(openai.NotFoundError):
        anyone.files.retrieve(secret.id)
    assert server.http(api_key=None).get("files").status_code == 200
    # ... and the revoked key is still refused, not taken for a local-mode token.
    with pytest.raises(openai.AuthenticationError):
        server.client(key).files.list()


def test_a_server_not_in_local_mode_needs_a_key_even_with_none_created(server_factory: ServerFactory) -> None:
    server = server_factory(local_mode_allowed=False)

    with pytest.raises(openai.AuthenticationError) as caught:
        server.client("any-token").files.list()
    assert caught.value.code == "invalid_api_key"

    key = server.create_key("team")
    created = server.client(key).files.create(file=("t.jsonl", chat_jsonl(1)), purpose="fine-tune")
    assert [f.id for f in server.client(key).files.list()] == [created.id]
