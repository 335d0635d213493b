"""`POST /v1/webhook_endpoints/{id}/test`: send a sample event now and report the receiver's answer.

The call is bounded three ways, since any API user picks its target: a few calls per project at once
(more get a 429), one total time limit, and a failure that says nothing about the target beyond the
HTTP status it answered with. "Connection refused" against "timed out" would tell open, closed and
filtered ports apart, so every failure without an HTTP answer reads the same and takes the full time
limit.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import anyio

from openft.errors import InvalidRequest, RateLimited
from openft.schemas.webhooks import SUPPORTED_EVENT_TYPES, WebhookEndpointTestResult
from openft.services.context import Project, ServiceContext
from openft.services.webhook_delivery import active_secrets, signature_headers
from openft.services.webhook_http import DeliveryFailed, post_webhook
from openft.services.webhooks import address_policy, event_payload, get_endpoint_row


class EndpointTestSlots:
    """How many test calls each project has in flight, in this server process."""

    def __init__(self, max_per_project: int) -> None:
        self.max_per_project = max_per_project
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, project: Project) -> Iterator[None]:
        with self._lock:
            if self._in_flight[project.id] >= self.max_per_project:
                raise RateLimited(
                    f"Rate limit reached for webhook endpoint tests: at most {self.max_per_project} "
                    "at once per project. Wait for the ones in flight to finish and try again."
                )
            self._in_flight[project.id] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[project.id] -= 1


async def send_test_event(
    ctx: ServiceContext, slots: EndpointTestSlots, project: Project, endpoint_id: str, event_type: str
) -> WebhookEndpointTestResult:
    """The receiver's status code when it answered 2xx; a 400 "delivery failed" otherwise."""
    if event_type not in SUPPORTED_EVENT_TYPES:
        raise InvalidRequest(
            f"openft does not send {event_type!r} events; supported: {', '.join(SUPPORTED_EVENT_TYPES)}.",
            param="event_type",
        )
    with slots.hold(project):
        # The database is read in a short worker-thread call and released before anything is sent.
        url, keys = await anyio.to_thread.run_sync(_target, ctx, project, endpoint_id)
        payload = event_payload(event_type, "ftjob-test")
        body = json.dumps(payload)
        timeout_s = ctx.settings.webhook_timeout_s
        started = time.monotonic()
        try:
            status = await post_webhook(
                url,
                body,
                signature_headers(keys, payload["id"], body),
                policy=address_policy(ctx),
                timeout_s=timeout_s,
            )
        except DeliveryFailed as exc:
            if exc.status_code is None:
                await anyio.sleep(max(0.0, started + timeout_s - time.monotonic()))
            raise _failed(exc.status_code) from None
    return WebhookEndpointTestResult(
        event_type=event_type, status_code=status, webhook_endpoint_id=endpoint_id
    )


def _target(ctx: ServiceContext, project: Project, endpoint_id: str) -> tuple[str, list[str]]:
    with ctx.db.session() as session:
        endpoint = get_endpoint_row(session, project, endpoint_id)
        return endpoint.url, active_secrets(endpoint)


def _failed(status_code: int | None) -> InvalidRequest:
    answered = (
        f"the endpoint answered HTTP {status_code}; a delivery counts only with a 2xx answer"
        if status_code is not None
        else "no HTTP answer from the endpoint's URL"
    )
    return InvalidRequest(
        f"Webhook test delivery failed: {answered}.", param="webhook_endpoint_id", code="delivery_failed"
    )
