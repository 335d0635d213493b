"""HTTP for /v1/webhook_endpoints: the SDK's `client.webhooks` create/list/retrieve/update/delete/test."""

from __future__ import annotations

from fastapi import APIRouter

from openft.api.deps import Context, CurrentProject, WebhookTestSlots
from openft.api.openapi import error_responses, page_limit
from openft.schemas.webhooks import (
    CreateWebhookEndpointRequest,
    DeletedWebhookEndpoint,
    RotateSecretRequest,
    TestWebhookEndpointRequest,
    UpdateWebhookEndpointRequest,
    WebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointTestResult,
    WebhookEndpointWithSecret,
)
from openft.services import webhook_test_calls
from openft.services import webhooks as webhook_service

router = APIRouter(prefix="/webhook_endpoints")


@router.post("", response_model=WebhookEndpointWithSecret)
def create_endpoint(
    body: CreateWebhookEndpointRequest, ctx: Context, project: CurrentProject
) -> WebhookEndpointWithSecret:
    return webhook_service.create_endpoint(ctx, project, body)


@router.get("", response_model=WebhookEndpointList)
def list_endpoints(
    ctx: Context,
    project: CurrentProject,
    after: str | None = None,
    limit: int = page_limit(20, webhook_service.MAX_LIST_LIMIT),
) -> WebhookEndpointList:
    return webhook_service.list_endpoints(ctx, project, after=after, limit=limit)


@router.get("/{endpoint_id}", response_model=WebhookEndpoint)
def retrieve_endpoint(endpoint_id: str, ctx: Context, project: CurrentProject) -> WebhookEndpoint:
    return webhook_service.retrieve_endpoint(ctx, project, endpoint_id)


@router.post("/{endpoint_id}", response_model=WebhookEndpoint)
def update_endpoint(
    endpoint_id: str, body: UpdateWebhookEndpointRequest, ctx: Context, project: CurrentProject
) -> WebhookEndpoint:
    return webhook_service.update_endpoint(ctx, project, endpoint_id, body)


@router.delete("/{endpoint_id}", response_model=DeletedWebhookEndpoint)
def delete_endpoint(endpoint_id: str, ctx: Context, project: CurrentProject) -> DeletedWebhookEndpoint:
    return webhook_service.delete_endpoint(ctx, project, endpoint_id)


@router.post("/{endpoint_id}/rotate_secret", response_model=WebhookEndpointWithSecret)
def rotate_secret(
    endpoint_id: str, ctx: Context, project: CurrentProject, body: RotateSecretRequest | None = None
) -> WebhookEndpointWithSecret:
    keep = body.keep_old_secret_active_for_24_hours if body else False
    return webhook_service.rotate_secret(ctx, project, endpoint_id, keep_old_for_24_hours=keep)


# async: the outbound call waits on the event loop, so slow receivers hold none of the threads that
# serve the other (sync) routes.
@router.post("/{endpoint_id}/test", response_model=WebhookEndpointTestResult, responses=error_responses(429))
async def test_endpoint(
    endpoint_id: str,
    body: TestWebhookEndpointRequest,
    ctx: Context,
    project: CurrentProject,
    slots: WebhookTestSlots,
) -> WebhookEndpointTestResult:
    return await webhook_test_calls.send_test_event(ctx, slots, project, endpoint_id, body.event_type)
