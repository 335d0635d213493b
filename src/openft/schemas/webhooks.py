"""Webhook endpoints and the events they receive (the SDK's `client.webhooks`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

# The events openft emits today; the endpoint API accepts only these.
SUPPORTED_EVENT_TYPES = ("fine_tuning.job.succeeded", "fine_tuning.job.failed", "fine_tuning.job.cancelled")


class CreateWebhookEndpointRequest(BaseModel):
    event_types: list[str]
    name: str
    url: str


class UpdateWebhookEndpointRequest(BaseModel):
    event_types: list[str] | None = None
    name: str | None = None
    url: str | None = None


class RotateSecretRequest(BaseModel):
    keep_old_secret_active_for_24_hours: bool = False


class TestWebhookEndpointRequest(BaseModel):
    event_type: str


class WebhookEndpoint(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    created_at: int
    updated_at: int
    event_types: list[str]
    name: str
    url: str
    signing_secret_hint: str


class WebhookEndpointWithSecret(WebhookEndpoint):
    signing_secret: str


class WebhookEndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookEndpoint]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedWebhookEndpoint(BaseModel):
    id: str
    object: Literal["webhook_endpoint.deleted"] = "webhook_endpoint.deleted"
    deleted: bool


class WebhookEndpointTestResult(BaseModel):
    object: Literal["webhook_endpoint.test"] = "webhook_endpoint.test"
    event_type: str
    status_code: int
    success: Literal[True] = True
    webhook_endpoint_id: str
