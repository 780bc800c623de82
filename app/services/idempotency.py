"""Stored outcomes of requests made with an Idempotency-Key (app.api.idempotency replays them),
purged by a periodic job once they are older than NPS_IDEMPOTENCY_TTL_HOURS."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import each_workspace
from app.jobs import JobContext, task
from app.models import IdempotencyRecord


async def purge_expired(session: AsyncSession, *, hours: int) -> int:
    """Delete the records older than `hours`, in every workspace; how many went."""
    cutoff = datetime.now(UTC) - timedelta(hours=hours)
    gone = 0
    async for workspace_id in each_workspace(session):
        result = await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.workspace_id == workspace_id,
                IdempotencyRecord.created_at < cutoff,
            )
        )
        gone += int(result.rowcount)  # type: ignore[attr-defined]
    return gone


@task("idempotency.purge", every=timedelta(hours=1))
async def purge_expired_keys(ctx: JobContext) -> None:
    await purge_expired(ctx.session, hours=ctx.settings.idempotency_ttl_hours)
