"""Webhook endpoints of a workspace: registration (with the SSRF guard), changes, deletion and
secret rotation. Delivery is app.services.deliveries; docs/webhooks.md is the receiver's guide."""

import base64
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import NotFound, Unprocessable, field_error
from app.models import WebhookEndpoint
from app.pagination import paginate
from app.services import ssrf

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# After a rotation the previous secret signs too for this long, so receivers can switch over.
ROTATION_OVERLAP = timedelta(hours=24)
# Why the service disabled an endpoint (`disabled_reason`).
FAILING = "failing"
PATCHABLE = ("url", "events", "description", "enabled")


async def db_now(session: AsyncSession) -> datetime:
    """The database's clock (the transaction's start), which every stored instant uses."""
    return (await session.execute(select(func.now()))).scalar_one()


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


async def vet_url(url: str, settings: Settings) -> None:
    """Refuse (422 at body.url) a URL the service must not call (app.services.ssrf)."""
    try:
        target = ssrf.parse_url(url, production=settings.env == "production")
        await ssrf.checked_addresses(target, allow_private=settings.webhooks_allow_private)
    except ssrf.RefusedUrl as exc:
        raise Unprocessable(
            f"url is refused: {exc}", errors=[field_error(["body", "url"], str(exc))]
        ) from exc


async def create_endpoint(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    url: str,
    events: list[str] | None,
    description: str | None,
    enabled: bool,
    settings: Settings,
) -> WebhookEndpoint:
    await vet_url(url, settings)
    endpoint = WebhookEndpoint(
        workspace_id=workspace_id,
        url=url,
        events=events,
        description=description,
        enabled=enabled,
        secret=new_secret(),
    )
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint


async def get_endpoint(
    session: AsyncSession, workspace_id: uuid.UUID, endpoint_id: uuid.UUID, *, lock: bool = False
) -> WebhookEndpoint:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.workspace_id == workspace_id, WebhookEndpoint.id == endpoint_id
    )
    endpoint = await session.scalar(query.with_for_update() if lock else query)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


async def list_endpoints(
    session: AsyncSession, workspace_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[WebhookEndpoint], str | None]:
    return await paginate(
        session,
        select(WebhookEndpoint).where(WebhookEndpoint.workspace_id == workspace_id),
        updated_col=WebhookEndpoint.updated_at,
        id_col=WebhookEndpoint.id,
        limit=limit,
        cursor=cursor,
    )


async def update_endpoint(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    settings: Settings,
) -> WebhookEndpoint:
    """Apply the fields sent; enabling starts the failure count afresh."""
    endpoint = await get_endpoint(session, workspace_id, endpoint_id, lock=True)
    if "url" in changes and changes["url"] != endpoint.url:
        await vet_url(changes["url"], settings)
    for name in PATCHABLE:
        if name in changes:
            setattr(endpoint, name, changes[name])
    if changes.get("enabled") is True:
        endpoint.disabled_reason = None
        endpoint.failing_since = None
    if changes.get("enabled") is False:
        endpoint.disabled_reason = None  # the caller's own choice
    endpoint.updated_at = await db_now(session)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint


async def delete_endpoint(
    session: AsyncSession, workspace_id: uuid.UUID, endpoint_id: uuid.UUID
) -> None:
    """Delete the endpoint with its deliveries and their attempts; pending ones are not sent."""
    deleted = await session.scalar(
        delete(WebhookEndpoint)
        .where(WebhookEndpoint.workspace_id == workspace_id, WebhookEndpoint.id == endpoint_id)
        .returning(WebhookEndpoint.id)
    )
    if deleted is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")


async def rotate_secret(
    session: AsyncSession, workspace_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    """A new signing secret; the current one keeps signing beside it for ROTATION_OVERLAP
    (a secret rotated out earlier, still in its overlap, stops at once)."""
    endpoint = await get_endpoint(session, workspace_id, endpoint_id, lock=True)
    now = await db_now(session)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    await session.flush()
    await session.refresh(endpoint)
    return endpoint
