"""Webhook endpoints of the caller's workspace (admin scope): register, change, rotate the
secret, and the delivery log with its replays. docs/webhooks.md is the receiver's guide."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Response as HttpResponse

from app.api.auth import AdminAuth
from app.api.deps import AppSettingsDep, Cursor, Limit
from app.api.idempotency import REPLAYED, REPLAYED_HEADER, IdempotentAdmin
from app.bodies import StrictRoute
from app.db import SessionDep
from app.errors import Conflict
from app.models import DeliveryStatus
from app.pagination import DEFAULT_LIMIT
from app.presenters.webhooks import delivery_read, webhook_created, webhook_read
from app.schemas import Page, problem_doc
from app.schemas.webhooks import (
    DeliveryRead,
    RecoverAccepted,
    RecoverRequest,
    WebhookCreate,
    WebhookCreated,
    WebhookPatch,
    WebhookRead,
    WebhookTestAccepted,
)
from app.services import delivery_log, webhooks

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=StrictRoute)

SECRET_REPLAY_DOC: dict[int | str, dict[str, Any]] = {
    409: problem_doc(
        "Replay of a request that made a secret (`Idempotent-Replayed: true`): it was shown "
        "in that answer only; or a request with the same Idempotency-Key is still in progress "
        "(`Retry-After`)",
        retry_after=True,
        headers={REPLAYED: REPLAYED_HEADER},
    ),
}
URL_REFUSED_DOC: dict[int | str, dict[str, Any]] = {
    422: problem_doc(
        "Invalid input; or the URL is refused (not http(s), https required in production, "
        "credentials in it, or its host resolves to a loopback, private, link-local or "
        "metadata address): `errors` names body.url"
    )
}


def _secret_shown(endpoint_id: uuid.UUID) -> Conflict:
    return Conflict(
        f"this request already made a secret for webhook {endpoint_id}; it was shown only in "
        "that answer: rotate it again (POST /v1/webhooks/{id}/rotate-secret) if it was lost"
    )


@router.post(
    "/webhooks",
    response_model=WebhookCreated,
    status_code=201,
    responses={**SECRET_REPLAY_DOC, **URL_REFUSED_DOC},
    operation_id="create_webhook",
)
async def create_webhook(
    body: WebhookCreate,
    call: IdempotentAdmin,
    config: AppSettingsDep,
) -> HttpResponse:
    """Register an endpoint; its signing secret is in this answer only."""
    endpoint = await webhooks.create_endpoint(
        call.session,
        call.subject.workspace_id,
        url=body.url,
        events=body.events,
        description=body.description,
        enabled=body.enabled,
        settings=config,
    )
    return call.idempotency.respond(
        webhook_created(endpoint), 201, replay_as=_secret_shown(endpoint.id)
    )


@router.get("/webhooks", response_model=Page[WebhookRead], operation_id="list_webhooks")
async def list_webhooks(
    session: SessionDep, auth: AdminAuth, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[WebhookRead]:
    """List the workspace's endpoints in (updated_at, id) order, never their secrets."""
    rows, next_cursor = await webhooks.list_endpoints(
        session, auth.workspace_id, limit=limit, cursor=cursor
    )
    return Page(data=[webhook_read(r) for r in rows], next_cursor=next_cursor)


@router.get("/webhooks/{webhook_id}", response_model=WebhookRead, operation_id="get_webhook")
async def get_webhook(webhook_id: uuid.UUID, session: SessionDep, auth: AdminAuth) -> WebhookRead:
    """Read one endpoint."""
    return webhook_read(await webhooks.get_endpoint(session, auth.workspace_id, webhook_id))


@router.patch(
    "/webhooks/{webhook_id}",
    response_model=WebhookRead,
    responses=URL_REFUSED_DOC,
    operation_id="update_webhook",
)
async def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookPatch,
    session: SessionDep,
    auth: AdminAuth,
    config: AppSettingsDep,
) -> WebhookRead:
    """Change the fields sent; enabling a disabled endpoint starts its failure count afresh."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    endpoint = await webhooks.update_endpoint(
        session, auth.workspace_id, webhook_id, changes, settings=config
    )
    return webhook_read(endpoint)


@router.delete("/webhooks/{webhook_id}", status_code=204, operation_id="delete_webhook")
async def delete_webhook(webhook_id: uuid.UUID, session: SessionDep, auth: AdminAuth) -> None:
    """Delete an endpoint with its delivery log; nothing pending is sent."""
    await webhooks.delete_endpoint(session, auth.workspace_id, webhook_id)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response_model=WebhookCreated,
    status_code=200,
    responses=SECRET_REPLAY_DOC,
    operation_id="rotate_webhook_secret",
)
async def rotate_webhook_secret(webhook_id: uuid.UUID, call: IdempotentAdmin) -> HttpResponse:
    """A new secret, in this answer only; the old one signs too for 24 hours."""
    endpoint = await webhooks.rotate_secret(call.session, call.subject.workspace_id, webhook_id)
    return call.idempotency.respond(
        webhook_created(endpoint), 200, replay_as=_secret_shown(endpoint.id)
    )


DISABLED_DOC: dict[int | str, dict[str, Any]] = {
    409: problem_doc(
        "The endpoint is disabled (enable it first); or a request with the same "
        "Idempotency-Key is still in progress (`Retry-After`)",
        retry_after=True,
    )
}


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=Page[DeliveryRead],
    operation_id="list_webhook_deliveries",
)
async def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    session: SessionDep,
    auth: AdminAuth,
    status: Annotated[DeliveryStatus | None, Query(description="only deliveries in it")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[DeliveryRead]:
    """The endpoint's delivery log, newest first: each event's delivery with its attempts."""
    rows, next_cursor = await delivery_log.list_deliveries(
        session, auth.workspace_id, webhook_id, status=status, limit=limit, cursor=cursor
    )
    return Page(data=[delivery_read(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    response_model=DeliveryRead,
    status_code=202,
    responses=DISABLED_DOC,
    operation_id="retry_webhook_delivery",
)
async def retry_webhook_delivery(
    webhook_id: uuid.UUID,
    delivery_id: uuid.UUID,
    call: IdempotentAdmin,
) -> HttpResponse:
    """Queue an attempt of this delivery now (202), succeeded or failed before or not."""
    logged = await delivery_log.retry_delivery(
        call.session, call.subject.workspace_id, webhook_id, delivery_id
    )
    return call.idempotency.respond(delivery_read(logged), 202)


@router.post(
    "/webhooks/{webhook_id}/recover",
    response_model=RecoverAccepted,
    status_code=202,
    responses=DISABLED_DOC,
    operation_id="recover_webhook",
)
async def recover_webhook(
    webhook_id: uuid.UUID,
    body: RecoverRequest,
    call: IdempotentAdmin,
) -> HttpResponse:
    """Re-deliver every event since `since` that the endpoint subscribes to (202, how many)."""
    queued = await delivery_log.recover(
        call.session, call.subject.workspace_id, webhook_id, since=body.since
    )
    return call.idempotency.respond(RecoverAccepted(since=body.since, queued=queued), 202)


@router.post(
    "/webhooks/{webhook_id}/test",
    response_model=WebhookTestAccepted,
    status_code=202,
    responses=DISABLED_DOC,
    operation_id="send_webhook_test",
)
async def send_webhook_test(webhook_id: uuid.UUID, call: IdempotentAdmin) -> HttpResponse:
    """Send a `webhook.test` event to this endpoint only (202, with the event's id)."""
    event_id = await delivery_log.send_test(call.session, call.subject.workspace_id, webhook_id)
    return call.idempotency.respond(WebhookTestAccepted(event_id=event_id), 202)
