"""The planner's statistics after large loads (migration 0022's refresh_statistics).

A table that a bulk import has just filled has no statistics until it is analysed, and with
autovacuum off or behind the scores' plans are then chosen blind. After storing a batch the
batch paths ask PostgreSQL to analyse whichever of responses, stakeholders and accounts has
changed by more than 500 rows plus a tenth of its size since its last analysis: one cheap
look at the tables' counters per batch, and an ANALYZE (a sample of the rows, a fraction of a
second at a million answers) once in a while during a large load. One caller at a time
analyses a table; the others go on at once.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import driver


async def refresh_statistics(session: AsyncSession) -> list[str]:
    """Analyse the tables a load has changed enough; the names of those analysed."""
    conn = await driver(session)
    analysed: list[str] = await conn.fetchval("SELECT refresh_statistics()")
    return analysed
