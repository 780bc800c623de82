"""Webhook deliveries, in the worker: one per event and subscribed endpoint, attempted on the
retry schedule below until the receiver answers 2xx.

The outbox's dispatch of an event (app.outbox) calls `queue_deliveries`, which writes the
deliveries and their first `webhooks.deliver` jobs in the dispatch job's transaction; the unique
(endpoint, event) key makes a dispatch that runs twice a no-op. Each `webhooks.deliver` job is
one attempt, numbered in its payload: a job whose attempt was made already (its worker died
after the POST, or a manual retry came first) does nothing, so an attempt is recorded once,
while the receiver may see an event more than once (at least once; it deduplicates by
webhook-id, the event's id, the same on every attempt).
"""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs import TASKS, JobContext, enqueue, task
from app.models import DeliveryStatus, Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.outbox import Dispatched, subscribe
from app.services import events
from app.services.webhook_sender import attempt, payload
from app.services.webhooks import FAILING

DELIVER_TASK = "webhooks.deliver"
# The wait after each failed attempt: 10 attempts over about three days (docs/webhooks.md).
RETRY_SCHEDULE = tuple(
    timedelta(seconds=s)
    for s in (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600, 20 * 3600, 24 * 3600)
)
# An endpoint whose attempts have all failed for this long is disabled.
DISABLE_AFTER = timedelta(days=5)

# New deliveries of one event to the endpoints it targets, each with its first attempt's job.
# That job is due from the event's own instant: workers claim in run_at order, so with a backlog
# of events to dispatch an event's first attempts come next, not after every later event's
# dispatch (which held every delivery back until the whole backlog was dispatched).
_QUEUE = text(
    """
    WITH made AS (
        INSERT INTO webhook_deliveries (workspace_id, id, endpoint_id, event_id, next_attempt_at)
        SELECT e.workspace_id, gen_random_uuid(), e.id, CAST(:event_id AS uuid), now()
        FROM webhook_endpoints AS e
        WHERE e.workspace_id = CAST(:workspace_id AS uuid) AND e.enabled
          AND CASE WHEN :type = 'webhook.test' THEN e.id = CAST(:only AS uuid)
                   ELSE e.events IS NULL OR :type = ANY(e.events) END
        ON CONFLICT (workspace_id, endpoint_id, event_id) DO NOTHING
        RETURNING id
    )
    INSERT INTO jobs (task, payload, workspace_id, max_attempts, lease_seconds, run_at)
    SELECT :task, jsonb_build_object('delivery_id', made.id, 'attempt', 1),
           CAST(:workspace_id AS uuid), :max_attempts, :lease_seconds,
           CAST(:occurred_at AS timestamptz)
    FROM made
    """
)


def job_options() -> dict[str, object]:
    declared = TASKS.tasks[DELIVER_TASK]
    return {
        "task": DELIVER_TASK,
        "max_attempts": declared.max_attempts,
        "lease_seconds": max(1, int(declared.lease.total_seconds())),
    }


@subscribe()
async def queue_deliveries(event: Dispatched) -> None:
    """Every event goes to each enabled endpoint subscribed to its type; `webhook.test` only to
    the endpoint it names."""
    await event.session.execute(
        _QUEUE,
        {
            "workspace_id": str(event.workspace_id),
            "event_id": str(event.id),
            "type": event.type,
            "only": str(event.data.get("endpoint_id") or uuid.UUID(int=0)),
            "occurred_at": event.occurred_at,
            **job_options(),
        },
    )


async def queue_attempt(
    session: AsyncSession, delivery: WebhookDelivery, *, at: datetime | None = None
) -> None:
    """Queue the delivery's next attempt (now, or `at`)."""
    await enqueue(
        session,
        DELIVER_TASK,
        {"delivery_id": str(delivery.id), "attempt": delivery.attempts + 1},
        workspace_id=delivery.workspace_id,
        run_at=at,
    )


def secrets_of(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its overlap."""
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret is not None and expires is not None and now < expires:
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


@task(DELIVER_TASK, max_attempts=5, lease=timedelta(minutes=2))
async def deliver(ctx: JobContext) -> None:
    """One attempt of one delivery, recorded with its outcome; a failure queues the next
    attempt on the schedule, or ends the delivery, or disables an endpoint failing for days."""
    session = ctx.session
    found = (
        await session.execute(
            select(WebhookDelivery, WebhookEndpoint, Event)
            .join(
                WebhookEndpoint,
                (WebhookEndpoint.workspace_id == WebhookDelivery.workspace_id)
                & (WebhookEndpoint.id == WebhookDelivery.endpoint_id),
            )
            .join(Event, Event.id == WebhookDelivery.event_id)
            .where(
                WebhookDelivery.workspace_id == ctx.workspace_id,
                WebhookDelivery.id == uuid.UUID(str(ctx.payload["delivery_id"])),
            )
            .with_for_update(of=WebhookDelivery)
        )
    ).first()
    number = int(ctx.payload["attempt"])
    if found is None:
        return  # deleted with its endpoint, or purged with its event
    delivery, endpoint, event = found
    if delivery.status != DeliveryStatus.PENDING or delivery.attempts >= number:
        return  # this attempt was made already
    if not endpoint.enabled:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        return
    now = datetime.now(UTC)
    outcome = await attempt(
        endpoint.url,
        secrets_of(endpoint, now),
        str(event.id),
        payload(event.type, event.occurred_at, event.data),
        settings=ctx.settings,
    )
    session.add(
        WebhookAttempt(
            workspace_id=delivery.workspace_id,
            delivery_id=delivery.id,
            attempted_at=now,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            error=outcome.error,
            response_excerpt=outcome.excerpt,
        )
    )
    delivery.attempts = number
    delivery.last_attempt_at, delivery.last_status_code = now, outcome.status_code
    delivery.updated_at = now
    if outcome.ok:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.SUCCEEDED, None
        if endpoint.failing_since is not None:  # a statement only when a run of failures ends
            await session.execute(
                update(WebhookEndpoint)
                .where(_the(endpoint), WebhookEndpoint.failing_since.is_not(None))
                .values(failing_since=None)
            )
        return
    if await _disabled_for_failing(session, endpoint, now):
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
    elif number <= len(RETRY_SCHEDULE):
        delivery.next_attempt_at = now + RETRY_SCHEDULE[number - 1]
        await queue_attempt(session, delivery, at=delivery.next_attempt_at)
    else:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None


def _the(endpoint: WebhookEndpoint) -> ColumnElement[bool]:
    return (WebhookEndpoint.workspace_id == endpoint.workspace_id) & (
        WebhookEndpoint.id == endpoint.id
    )


async def _disabled_for_failing(
    session: AsyncSession, endpoint: WebhookEndpoint, now: datetime
) -> bool:
    """Note the failure; past DISABLE_AFTER of failures only, disable the endpoint and record
    `webhook.disabled` (once: only the attempt that disables it emits)."""
    since = (
        await session.execute(
            update(WebhookEndpoint)
            .where(_the(endpoint))
            .values(failing_since=func.coalesce(WebhookEndpoint.failing_since, now))
            .returning(WebhookEndpoint.failing_since)
        )
    ).scalar_one()
    if since is None or now - since < DISABLE_AFTER:
        return False
    disabled = await session.scalar(
        update(WebhookEndpoint)
        .where(_the(endpoint), WebhookEndpoint.enabled)
        .values(enabled=False, disabled_reason=FAILING, updated_at=now)
        .returning(WebhookEndpoint.id)
    )
    if disabled is not None:
        await events.emit(
            session,
            endpoint.workspace_id,
            "webhook.disabled",
            {
                "endpoint_id": str(endpoint.id),
                "url": endpoint.url,
                "reason": FAILING,
                "failing_since": since.isoformat(),
            },
        )
    return True
