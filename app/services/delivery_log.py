"""An endpoint's delivery log and its replays: read the deliveries with their attempts, retry
one now, re-deliver everything since an instant, send a `webhook.test`. Attempts themselves run
in the worker (app.services.deliveries); these calls only queue them."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, NotFound
from app.models import DeliveryStatus, Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.pagination import aware, decode_key, encode_key
from app.services import events
from app.services.deliveries import job_options, queue_attempt
from app.services.webhooks import db_now, get_endpoint


@dataclass(frozen=True, slots=True)
class LoggedDelivery:
    delivery: WebhookDelivery
    event_type: str
    attempts: Sequence[WebhookAttempt]


def _parse_cursor(values: list[Any]) -> tuple[datetime, uuid.UUID]:
    stamp, row_id = values
    return aware(stamp), uuid.UUID(str(row_id))


async def list_deliveries(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    status: DeliveryStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[LoggedDelivery], str | None]:
    """The endpoint's deliveries, newest first, each with its attempts (oldest first)."""
    await get_endpoint(session, workspace_id, endpoint_id)
    query = (
        select(WebhookDelivery, Event.type)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .where(
            WebhookDelivery.workspace_id == workspace_id,
            WebhookDelivery.endpoint_id == endpoint_id,
        )
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status.value)
    if cursor is not None:
        before = decode_key(cursor, _parse_cursor)
        query = query.where(tuple_(WebhookDelivery.created_at, WebhookDelivery.id) < before)
    rows = list(
        await session.execute(
            query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(
                limit + 1
            )
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [delivery.id for delivery, _ in rows]
    by_delivery: dict[uuid.UUID, list[WebhookAttempt]] = {i: [] for i in ids}
    if ids:
        made = await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.workspace_id == workspace_id, WebhookAttempt.delivery_id.in_(ids))
            .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
        )
        for one in made:
            by_delivery[one.delivery_id].append(one)
    page = [LoggedDelivery(d, kind, by_delivery[d.id]) for d, kind in rows]
    last = rows[-1][0] if more else None
    next_cursor = None if last is None else encode_key([last.created_at.isoformat(), str(last.id)])
    return page, next_cursor


async def _enabled_endpoint(
    session: AsyncSession, workspace_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, workspace_id, endpoint_id)
    if not endpoint.enabled:
        raise Conflict(
            f"webhook {endpoint_id} is disabled: enable it first "
            '(PATCH /v1/webhooks/{id} with {"enabled": true})'
        )
    return endpoint


async def retry_delivery(
    session: AsyncSession, workspace_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> LoggedDelivery:
    """Queue an attempt of the delivery now, whatever its status; an attempt already scheduled
    finds it made and does nothing."""
    await _enabled_endpoint(session, workspace_id, endpoint_id)
    found = (
        await session.execute(
            select(WebhookDelivery, Event.type)
            .join(Event, Event.id == WebhookDelivery.event_id)
            .where(
                WebhookDelivery.workspace_id == workspace_id,
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.id == delivery_id,
            )
            .with_for_update(of=WebhookDelivery)
        )
    ).first()
    if found is None:
        raise NotFound(f"no delivery {delivery_id} of webhook {endpoint_id}")
    delivery, kind = found
    now = await db_now(session)
    delivery.status, delivery.next_attempt_at, delivery.updated_at = (
        DeliveryStatus.PENDING.value,
        now,
        now,
    )
    await queue_attempt(session, delivery)
    made = await session.scalars(
        select(WebhookAttempt)
        .where(
            WebhookAttempt.workspace_id == workspace_id, WebhookAttempt.delivery_id == delivery.id
        )
        .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
    )
    return LoggedDelivery(delivery, kind, list(made))


# Every event since the instant that the endpoint subscribes to (`webhook.test` events are
# each for one endpoint and never replayed): a delivery each, new or set pending again, and the
# job of its next attempt.
_RECOVER = text(
    """
    WITH targets AS (
        INSERT INTO webhook_deliveries (workspace_id, id, endpoint_id, event_id, next_attempt_at)
        SELECT ev.workspace_id, gen_random_uuid(), ep.id, ev.id, now()
        FROM events AS ev
        JOIN webhook_endpoints AS ep ON ep.workspace_id = ev.workspace_id
        WHERE ev.workspace_id = CAST(:workspace_id AS uuid) AND ep.id = CAST(:endpoint_id AS uuid)
          AND ev.occurred_at >= :since AND ev.type <> 'webhook.test'
          AND (ep.events IS NULL OR ev.type = ANY(ep.events))
        ON CONFLICT (workspace_id, endpoint_id, event_id) DO UPDATE
            SET status = 'pending', next_attempt_at = now(), updated_at = now()
        RETURNING id, attempts
    )
    INSERT INTO jobs (task, payload, workspace_id, max_attempts, lease_seconds)
    SELECT :task, jsonb_build_object('delivery_id', targets.id, 'attempt', targets.attempts + 1),
           CAST(:workspace_id AS uuid), :max_attempts, :lease_seconds
    FROM targets
    """
)


async def recover(
    session: AsyncSession, workspace_id: uuid.UUID, endpoint_id: uuid.UUID, *, since: datetime
) -> int:
    """Re-deliver every event since `since` the endpoint subscribes to (delivered before or
    not), as far back as events are kept; how many deliveries were queued."""
    await _enabled_endpoint(session, workspace_id, endpoint_id)
    result = await session.execute(
        _RECOVER,
        {
            "workspace_id": str(workspace_id),
            "endpoint_id": str(endpoint_id),
            "since": since,
            **job_options(),
        },
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def send_test(
    session: AsyncSession, workspace_id: uuid.UUID, endpoint_id: uuid.UUID
) -> uuid.UUID:
    """Emit a `webhook.test` event for this endpoint only; its id."""
    await _enabled_endpoint(session, workspace_id, endpoint_id)
    return await events.emit(
        session,
        workspace_id,
        "webhook.test",
        {"endpoint_id": str(endpoint_id), "message": "a test event, sent on request"},
    )
