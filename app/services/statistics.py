"""The planner's statistics after large loads (migration 0022's refresh_statistics).

A table that a bulk import has just filled has no statistics until it is analysed, and with
autovacuum off or behind the scores' plans are then chosen blind. PostgreSQL is asked to
analyse whichever of responses, stakeholders and accounts has changed by more than 500 rows
plus a tenth of its size since its last analysis: by the worker, every STATISTICS_EVERY (a
periodic task, so no request waits for an ANALYZE), and by an import job once it has stored
its rows. One caller at a time analyses a table; the others go on at once.
"""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import driver
from app.jobs import JobContext, task

STATISTICS_EVERY = timedelta(seconds=30)


async def refresh_statistics(session: AsyncSession) -> list[str]:
    """Analyse the tables a load has changed enough; the names of those analysed."""
    conn = await driver(session)
    analysed: list[str] = await conn.fetchval("SELECT refresh_statistics()")
    return analysed


@task("statistics.refresh", every=STATISTICS_EVERY)
async def refresh_periodically(ctx: JobContext) -> None:
    """The periodic look at the tables' counters (a fraction of a millisecond when nothing
    changed enough)."""
    await refresh_statistics(ctx.session)
