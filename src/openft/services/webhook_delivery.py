"""Sending queued webhook deliveries: claim one, sign it, POST it, then mark it or schedule a retry.

Any number of senders (in the server and in standalone workers) share the queue: a delivery is held
through a claim token with an expiry, taken with one conditional UPDATE.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass

import anyio
from sqlalchemy import or_, select, update

from openft.services.context import ServiceContext, now
from openft.services.webhook_http import DeliveryFailed, post_webhook
from openft.services.webhooks import address_policy
from openft.store.tables import WebhookDeliveryRow, WebhookEndpointRow

logger = logging.getLogger(__name__)

CLAIM_S = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    base_delay_s: float = 5.0
    max_delay_s: float = 3600.0
    max_attempts: int = 8

    def delay_after(self, n_attempts: int) -> float:
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (n_attempts - 1)))


def signature_headers(
    secrets_: list[str], message_id: str, body: str, timestamp: int | None = None
) -> dict[str, str]:
    """Standard Webhooks headers; several secrets (during a rotation) give several signatures."""
    timestamp = timestamp or now()
    signed = f"{message_id}.{timestamp}.{body}".encode()
    signatures = []
    for secret in secrets_:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signatures.append("v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": "openft-webhooks",
    }


def active_secrets(endpoint: WebhookEndpointRow) -> list[str]:
    keep_previous = endpoint.previous_secret and (endpoint.previous_secret_expires_at or 0) > now()
    return [endpoint.secret, endpoint.previous_secret] if keep_previous else [endpoint.secret]  # type: ignore[list-item]


def deliver_due(ctx: ServiceContext, policy: RetryPolicy) -> bool:
    """Send one due delivery; False when none is due."""
    token = secrets.token_hex(8)
    due = (
        select(WebhookDeliveryRow.id)
        .where(
            WebhookDeliveryRow.status == "pending",
            WebhookDeliveryRow.next_attempt_at <= time.time(),
            or_(WebhookDeliveryRow.claimed_until.is_(None), WebhookDeliveryRow.claimed_until < time.time()),
        )
        .order_by(WebhookDeliveryRow.seq)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    with ctx.db.session() as session:
        session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id == due)
            .values(claim_token=token, claimed_until=time.time() + CLAIM_S)
        )
        delivery = session.scalar(select(WebhookDeliveryRow).where(WebhookDeliveryRow.claim_token == token))
        if delivery is None:
            return False
        endpoint = session.scalar(
            select(WebhookEndpointRow).where(WebhookEndpointRow.id == delivery.endpoint_id)
        )
        assert endpoint is not None
        url, body, event_id, keys = (
            endpoint.url,
            delivery.payload,
            delivery.event_id,
            active_secrets(endpoint),
        )
    error = None
    try:
        anyio.run(_post, ctx, url, body, signature_headers(keys, event_id, body))
    except DeliveryFailed as exc:
        error = exc.detail
    except Exception as exc:  # whatever else breaks one send is a failed attempt, never a stuck claim
        logger.exception("webhook delivery %s failed unexpectedly", event_id)
        error = f"delivery failed ({type(exc).__name__})"
    _record_attempt(ctx, token, error, policy)
    return True


async def _post(ctx: ServiceContext, url: str, body: str, headers: dict[str, str]) -> None:
    await post_webhook(
        url, body, headers, policy=address_policy(ctx), timeout_s=ctx.settings.webhook_timeout_s
    )


def _record_attempt(ctx: ServiceContext, token: str, error: str | None, policy: RetryPolicy) -> None:
    with ctx.db.session() as session:
        delivery = session.scalar(select(WebhookDeliveryRow).where(WebhookDeliveryRow.claim_token == token))
        assert delivery is not None
        delivery.n_attempts += 1
        delivery.claim_token, delivery.claimed_until, delivery.last_error = None, None, error
        if error is None:
            delivery.status, delivery.delivered_at = "delivered", now()
        elif delivery.n_attempts >= policy.max_attempts:
            delivery.status = "failed"
        else:
            delivery.next_attempt_at = time.time() + policy.delay_after(delivery.n_attempts)
