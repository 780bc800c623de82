"""refresh_statistics (migration 0022): the planner's statistics after large loads.

The batch paths call it after storing a batch; it analyses responses, stakeholders and accounts
when they changed by more than 500 rows plus a tenth of their size since their last analysis,
one caller at a time. The service's role, which owns no table, may run it.
"""

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import SERVICE_ROLE
from tests.support.api import put_account, put_stakeholder
from tests.support.harness import Tenant

TABLES = ["responses", "stakeholders", "accounts"]
# An unusual score spread: the most common values ANALYZE finds are this test's answers.
SCORES = [3] * 40 + [8] * 25 + [10] * 5


async def _as_service(session: AsyncSession) -> None:
    await session.execute(text(f"SET LOCAL ROLE {SERVICE_ROLE}"))


async def _refresh(session: AsyncSession, min_changes: int, fraction: float) -> list[str]:
    result = await session.execute(
        text("SELECT refresh_statistics(:m, :f)"), {"m": min_changes, "f": fraction}
    )
    return list(result.scalar_one())


async def _load(tenant: Tenant) -> None:
    await put_account(tenant.client, "acme", name="Acme")
    await put_stakeholder(tenant.client, "dana", role="user")
    items = [
        {
            "stakeholder_id": "dana",
            "score": s,
            "submitted_at": f"2026-01-01T09:{i // 60:02d}:{i % 60:02d}Z",
        }
        for i, s in enumerate(SCORES)
    ]
    r = await tenant.client.post("/v1/responses/batch", json={"responses": items})
    assert r.status_code == 200, r.text


async def test_the_service_role_analyses_what_changed_enough(
    tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await _load(tenant)
    async with sessionmaker() as session:
        await _as_service(session)
        # Every table over a threshold below any count of changes: all three analysed.
        assert await _refresh(session, -1, 0.0) == TABLES
        await session.execute(text("RESET ROLE"))
        # ANALYZE saw the batch's answers (uncommitted, this transaction's own): the most
        # common scores of responses are the batch's, most common first.
        common = (
            await session.execute(
                text(
                    "SELECT most_common_vals::text FROM pg_stats "
                    "WHERE tablename = 'responses' AND attname = 'score'"
                )
            )
        ).scalar_one()
        assert common is not None
        assert [int(v) for v in common.strip("{}").split(",")][:3] == [3, 8, 10]


async def test_small_changes_are_left_alone(
    tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await _load(tenant)
    async with sessionmaker() as session:
        await _as_service(session)
        assert await _refresh(session, 10**15, 0.0) == []
        assert await _refresh(session, 0, 10.0**9) == []


async def test_one_caller_at_a_time(engine: AsyncEngine) -> None:
    """A table whose analysis another transaction holds is skipped, not waited for."""
    async with engine.connect() as holder, engine.connect() as caller:
        await holder.begin()
        await holder.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtext('refresh_statistics'), "
                "'responses'::regclass::int)"
            )
        )
        await caller.begin()
        await caller.execute(text(f"SET LOCAL ROLE {SERVICE_ROLE}"))
        await caller.execute(text("SET LOCAL lock_timeout = '2s'"))
        analysed = (await caller.execute(text("SELECT refresh_statistics(-1, 0)"))).scalar_one()
        assert list(analysed) == ["stakeholders", "accounts"]
        await caller.rollback()
        await holder.rollback()


async def test_the_worker_refreshes_them_periodically(
    sessionmaker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No request waits for an ANALYZE: the worker's periodic task looks every 30 s, as the
    service's role, in no workspace."""
    from app.config import Settings
    from app.jobs import TASKS, JobContext
    from app.services import statistics

    declared = TASKS.tasks["statistics.refresh"]
    assert declared.every == statistics.STATISTICS_EVERY == timedelta(seconds=30)
    seen: list[list[str]] = []
    original = statistics.refresh_statistics

    async def spy(session: AsyncSession) -> list[str]:
        seen.append(await original(session))
        return seen[-1]

    monkeypatch.setattr(statistics, "refresh_statistics", spy)
    async with sessionmaker() as session, session.begin():
        await _as_service(session)
        settings = Settings(database_url="postgresql://unused@localhost/unused")
        await declared.handler(JobContext(session, settings, 0, None, {}, 1))
    assert len(seen) == 1
    assert set(seen[0]) <= set(TABLES)
