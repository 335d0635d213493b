"""Webhook endpoints of a project, and the events they are sent when a job ends.

Events follow OpenAI's webhook shape, `{id, object: "event", created_at, type, data: {id}}`, signed as
the SDK's `client.webhooks.unwrap(...)` verifies (Standard Webhooks: HMAC-SHA256 over
`{webhook-id}.{webhook-timestamp}.{body}` with the endpoint's `whsec_` secret).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openft import ids
from openft.errors import InvalidRequest, no_such_object
from openft.schemas.webhooks import (
    SUPPORTED_EVENT_TYPES,
    CreateWebhookEndpointRequest,
    DeletedWebhookEndpoint,
    UpdateWebhookEndpointRequest,
    WebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointWithSecret,
)
from openft.services.context import Project, ServiceContext, now
from openft.services.webhook_addresses import AddressPolicy, check_url_at_create
from openft.store.tables import WebhookDeliveryRow, WebhookEndpointRow

KEEP_OLD_SECRET_S = 24 * 3600
MAX_LIST_LIMIT = 100


def address_policy(ctx: ServiceContext) -> AddressPolicy:
    return AddressPolicy.from_entries(ctx.settings.webhook_allowed_hosts)


def _checked_url(ctx: ServiceContext, url: str) -> str:
    return check_url_at_create(url, address_policy(ctx), resolve_timeout_s=ctx.settings.webhook_timeout_s)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_endpoint(
    ctx: ServiceContext, project: Project, request: CreateWebhookEndpointRequest
) -> WebhookEndpointWithSecret:
    row = WebhookEndpointRow(
        id="we_" + ids.random_base62(24),
        project_id=project.id,
        name=_valid_name(request.name),
        url=_checked_url(ctx, request.url),
        event_types_json=json.dumps(_valid_event_types(request.event_types)),
        secret=new_secret(),
        created_at=now(),
        updated_at=now(),
    )
    with ctx.db.session() as session:
        session.add(row)
    return WebhookEndpointWithSecret(**_endpoint(row).model_dump(), signing_secret=row.secret)


def _valid_name(name: str) -> str:
    if not 1 <= len(name) <= 256:
        raise InvalidRequest("name must be 1 to 256 characters.", param="name")
    return name


def _valid_event_types(event_types: list[str]) -> list[str]:
    if not event_types:
        raise InvalidRequest("event_types must name at least one event type.", param="event_types")
    unsupported = [t for t in event_types if t not in SUPPORTED_EVENT_TYPES]
    if unsupported:
        raise InvalidRequest(
            f"openft does not send {unsupported[0]!r} events; supported: {', '.join(SUPPORTED_EVENT_TYPES)}.",
            param="event_types",
        )
    return list(dict.fromkeys(event_types))


def _endpoint(row: WebhookEndpointRow) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        event_types=json.loads(row.event_types_json),
        name=row.name,
        url=row.url,
        signing_secret_hint=row.secret[:9] + "..." + row.secret[-4:],
    )


def get_endpoint_row(session: Session, project: Project, endpoint_id: str) -> WebhookEndpointRow:
    row = session.scalar(
        select(WebhookEndpointRow).where(
            WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.project_id == project.id
        )
    )
    if row is None:
        raise no_such_object("WebhookEndpoint", endpoint_id, "webhook_endpoint_id")
    return row


def retrieve_endpoint(ctx: ServiceContext, project: Project, endpoint_id: str) -> WebhookEndpoint:
    with ctx.db.session() as session:
        return _endpoint(get_endpoint_row(session, project, endpoint_id))


def list_endpoints(
    ctx: ServiceContext, project: Project, *, after: str | None, limit: int
) -> WebhookEndpointList:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIST_LIMIT}.", param="limit")
    query = (
        select(WebhookEndpointRow)
        .where(WebhookEndpointRow.project_id == project.id)
        .order_by(WebhookEndpointRow.seq.desc())
    )
    with ctx.db.session() as session:
        if after:
            query = query.where(WebhookEndpointRow.seq < get_endpoint_row(session, project, after).seq)
        rows = list(session.scalars(query.limit(limit + 1)))
    data = [_endpoint(r) for r in rows[:limit]]
    return WebhookEndpointList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=len(rows) > limit,
    )


def update_endpoint(
    ctx: ServiceContext, project: Project, endpoint_id: str, request: UpdateWebhookEndpointRequest
) -> WebhookEndpoint:
    # The URL is checked (and its name resolved) before the session opens, not while it is held.
    url = None if request.url is None else _checked_url(ctx, request.url)
    with ctx.db.session() as session:
        row = get_endpoint_row(session, project, endpoint_id)
        if request.name is not None:
            row.name = _valid_name(request.name)
        if url is not None:
            row.url = url
        if request.event_types is not None:
            row.event_types_json = json.dumps(_valid_event_types(request.event_types))
        row.updated_at = now()
        return _endpoint(row)


def rotate_secret(
    ctx: ServiceContext, project: Project, endpoint_id: str, *, keep_old_for_24_hours: bool
) -> WebhookEndpointWithSecret:
    with ctx.db.session() as session:
        row = get_endpoint_row(session, project, endpoint_id)
        row.previous_secret = row.secret if keep_old_for_24_hours else None
        row.previous_secret_expires_at = now() + KEEP_OLD_SECRET_S if keep_old_for_24_hours else None
        row.secret, row.updated_at = new_secret(), now()
        return WebhookEndpointWithSecret(**_endpoint(row).model_dump(), signing_secret=row.secret)


def delete_endpoint(ctx: ServiceContext, project: Project, endpoint_id: str) -> DeletedWebhookEndpoint:
    with ctx.db.session() as session:
        row = get_endpoint_row(session, project, endpoint_id)
        for delivery in session.scalars(
            select(WebhookDeliveryRow).where(WebhookDeliveryRow.endpoint_id == row.id)
        ):
            session.delete(delivery)
        session.delete(row)
    return DeletedWebhookEndpoint(id=endpoint_id, deleted=True)


def event_payload(event_type: str, subject_id: str, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or "evt_" + ids.random_base62(24),
        "object": "event",
        "created_at": now(),
        "type": event_type,
        "data": {"id": subject_id},
    }


def enqueue_event(session: Session, project_id: str, event_type: str, subject_id: str) -> None:
    """Queue `event_type` for every endpoint of the project that subscribed to it (same transaction)."""
    payload = event_payload(event_type, subject_id)
    endpoints = session.scalars(select(WebhookEndpointRow).where(WebhookEndpointRow.project_id == project_id))
    for endpoint in endpoints:
        if event_type in json.loads(endpoint.event_types_json):
            session.add(
                WebhookDeliveryRow(
                    id="whd_" + ids.random_base62(24),
                    event_id=payload["id"],
                    endpoint_id=endpoint.id,
                    event_type=event_type,
                    payload=json.dumps(payload),
                    status="pending",
                    n_attempts=0,
                    next_attempt_at=time.time(),
                    created_at=now(),
                )
            )
