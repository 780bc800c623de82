"""Dispatching domain events to their subscribers, in the worker.

`app.services.events.emit` writes an event and queues one `events.dispatch` job for it in the
transaction of the change. The worker runs that job: every subscriber of the event's type
(declared with `@subscribe(...)` beside its code) is called in the job's transaction, so what
they write (webhook deliveries, follow-up cases) commits together with the job's completion, or
not at all and the job runs again. A job can run more than once, so a subscriber must be safe
to repeat: back what it writes with a unique constraint (ON CONFLICT DO NOTHING).
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import each_workspace
from app.jobs import JobContext, task
from app.models import Event
from app.services.events import DISPATCH_TASK, EVENT_TYPES


@dataclass(frozen=True, slots=True)
class Dispatched:
    """An event as a subscriber sees it, with the job's session and settings."""

    session: AsyncSession
    settings: Settings
    workspace_id: uuid.UUID
    id: uuid.UUID
    type: str
    data: dict[str, Any]
    occurred_at: datetime


Subscriber = Callable[[Dispatched], Awaitable[None]]


@dataclass
class Subscribers:
    by_type: dict[str, list[Subscriber]] = field(default_factory=dict)

    def subscribe(self, *types: str) -> Callable[[Subscriber], Subscriber]:
        """Call the decorated function for every event of these types (none given: every type)."""
        unknown = sorted(set(types) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(f"undeclared event types: {unknown}")

        def register(handler: Subscriber) -> Subscriber:
            for kind in types or EVENT_TYPES:
                self.by_type.setdefault(kind, []).append(handler)
            return handler

        return register

    def of(self, kind: str) -> list[Subscriber]:
        return list(self.by_type.get(kind, ()))


SUBSCRIBERS = Subscribers()
subscribe = SUBSCRIBERS.subscribe


@task(DISPATCH_TASK, max_attempts=10, backoff=timedelta(seconds=5))
async def dispatch_event(ctx: JobContext) -> None:
    """Hand one event to each subscriber of its type; an event gone (purged, or its workspace
    deleted) has nothing left to do."""
    event = await ctx.session.scalar(
        select(Event).where(
            Event.workspace_id == ctx.workspace_id,
            Event.id == uuid.UUID(str(ctx.payload["event_id"])),
        )
    )
    if event is None:
        return
    dispatched = Dispatched(
        ctx.session,
        ctx.settings,
        event.workspace_id,
        event.id,
        event.type,
        dict(event.data),
        event.occurred_at,
    )
    for handler in SUBSCRIBERS.of(event.type):
        await handler(dispatched)


@task("events.purge", every=timedelta(hours=1))
async def purge_events(ctx: JobContext) -> None:
    """Events are kept NPS_EVENT_RETENTION_DAYS for replays, then deleted."""
    cutoff = func.now() - timedelta(days=ctx.settings.event_retention_days)
    async for workspace_id in each_workspace(ctx.session):
        await ctx.session.execute(
            delete(Event).where(Event.workspace_id == workspace_id, Event.occurred_at < cutoff)
        )
