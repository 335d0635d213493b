"""Webhook endpoints through the SDK; signed job events delivered to a local receiver, with retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import openai
import pytest

from openft.train.synthetic import make_split
from tests.jobs.conftest import start_job_server, upload_examples, wait_for_job
from tests.jobs.webhook_receiver import ALLOW_LOOPBACK_RECEIVERS, WebhookReceiver

if TYPE_CHECKING:
    from tests.conftest import LiveServer, ServerFactory

JOB_EVENTS = ["fine_tuning.job.succeeded", "fine_tuning.job.failed", "fine_tuning.job.cancelled"]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def server(server_factory: ServerFactory, tiny_model_dir: Path) -> LiveServer:
    return start_job_server(
        server_factory, tiny_model_dir, webhook_retry_base_s=0.1, **ALLOW_LOOPBACK_RECEIVERS
    )


def test_endpoint_crud_and_test_delivery(server: LiveServer, receiver: WebhookReceiver) -> None:
    client = server.client(api_key=server.create_key("owner"))
    other = server.client(api_key=server.create_key("other"))
    created = client.webhooks.create(event_types=JOB_EVENTS, name="ci", url=receiver.url)
    assert created.id.startswith("we_") and created.object == "webhook_endpoint"
    assert created.signing_secret.startswith("whsec_")
    assert created.signing_secret_hint and created.signing_secret not in created.signing_secret_hint
    assert client.webhooks.retrieve(created.id).url == receiver.url
    assert [e.id for e in client.webhooks.list()] == [created.id]
    updated = client.webhooks.update(created.id, name="renamed", event_types=["fine_tuning.job.failed"])
    assert updated.name == "renamed" and updated.event_types == ["fine_tuning.job.failed"]

    result = client.webhooks.test(created.id, event_type="fine_tuning.job.succeeded")
    assert result.status_code == 200 and result.webhook_endpoint_id == created.id
    request = receiver.wait_for(1)[0]
    event = client.webhooks.unwrap(request.body, request.headers, secret=created.signing_secret)
    assert event.type == "fine_tuning.job.succeeded"
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.unwrap(request.body, request.headers, secret="whsec_" + "A" * 44)

    with pytest.raises(openai.BadRequestError) as caught:
        client.webhooks.create(event_types=["batch.completed"], name="x", url=receiver.url)
    assert caught.value.param == "event_types"
    with pytest.raises(openai.NotFoundError):
        other.webhooks.retrieve(created.id)
    deleted = client.webhooks.delete(created.id)
    assert deleted.deleted is True and deleted.object == "webhook_endpoint.deleted"


def test_a_failed_job_is_announced_signed_and_retried(server: LiveServer, receiver: WebhookReceiver) -> None:
    client = server.client()
    receiver.n_failures = 2  # the first two attempts get a 500; the third succeeds
    endpoint = client.webhooks.create(event_types=JOB_EVENTS, name="ci", url=receiver.url)
    job = client.fine_tuning.jobs.create(
        model="openft-tiny", training_file=upload_examples(client, make_split(7, 0)[0])
    )
    assert wait_for_job(client, job.id, timeout_s=60).status == "failed"

    attempts = receiver.wait_for(3)
    assert len({a.headers["webhook-id"] for a in attempts}) == 1  # one event, retried
    event = client.webhooks.unwrap(attempts[-1].body, attempts[-1].headers, secret=endpoint.signing_secret)
    assert event.type == "fine_tuning.job.failed"
    assert event.data.id == job.id
    assert json.loads(attempts[-1].body)["object"] == "event"


def test_rotation_keeping_the_old_secret_signs_with_both(
    server: LiveServer, receiver: WebhookReceiver
) -> None:
    client = server.client()
    endpoint = client.webhooks.create(event_types=JOB_EVENTS, name="ci", url=receiver.url)
    rotated = client.webhooks.rotate_secret(endpoint.id, keep_old_secret_active_for_24_hours=True)
    assert rotated.signing_secret != endpoint.signing_secret
    client.webhooks.test(endpoint.id, event_type="fine_tuning.job.cancelled")
    request = receiver.wait_for(1)[0]
    assert len(request.headers["webhook-signature"].split()) == 2
    for secret in (endpoint.signing_secret, rotated.signing_secret):
        assert (
            client.webhooks.unwrap(request.body, request.headers, secret=secret).type
            == "fine_tuning.job.cancelled"
        )
