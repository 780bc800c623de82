"""The rate limits' windows in PostgreSQL: shared by every process that counts into them,
and purged by the worker once they are over."""

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_asyncio
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_sessionmaker, session_scope
from app.guard import counters_of, counters_on
from app.jobs import JobContext
from app.models import RateLimitWindow
from app.services.invitation_tokens import hash_token
from app.services.rate_limits import purge_old_windows, token_key
from tests.support.guard import PUBLIC, bearer, limited, visitor
from tests.support.harness import build_app


@pytest_asyncio.fixture(loop_scope="session")
async def two_workers(
    database_url: str,
) -> AsyncIterator[tuple[list[AsyncEngine], str, str]]:
    """Two engines as two processes have them, and an address and token no other test uses;
    their counters commit for real, so they are deleted afterwards."""
    settings = Settings()
    engines = [create_engine(database_url, settings, application_name="nps-api") for _ in "ab"]
    address = f"192.0.2.{uuid.uuid4().int % 250 + 1}"
    token = "npsi_" + secrets.token_urlsafe(32)
    yield engines, address, token
    async with session_scope(create_sessionmaker(engines[0])) as session:
        keys = [f"ip:{address}", token_key(hash_token(token))]
        await session.execute(delete(RateLimitWindow).where(RateLimitWindow.key.in_(keys)))
    for engine in engines:
        await engine.dispose()


class TestSharedAcrossWorkers:
    async def test_two_app_instances_count_into_the_same_windows(
        self, two_workers: tuple[list[AsyncEngine], str, str]
    ) -> None:
        engines, address, token = two_workers
        apps = []
        for engine in engines:
            # The production counters (an autocommit connection of each process's own engine),
            # sharing what each counted at every call.
            settings = limited(per_ip=3).model_copy(update={"rate_limit_flush_seconds": 0.001})
            app = build_app(create_sessionmaker(engine), engine, settings=settings)
            counters = counters_on(engine)
            app.dependency_overrides[counters_of] = lambda scope, counters=counters: counters
            apps.append(app)

        answers = []
        async with visitor(apps[0], address=address) as a, visitor(apps[1], address=address) as b:
            for client in (a, b, a, b, a):
                answers.append(await client.get(PUBLIC, headers=bearer(token)))
                await asyncio.sleep(0.005)

        # Every call guessed a token: each 401 rolled its transaction back, and its counts
        # were shared on their own all the same.
        assert [r.status_code for r in answers] == [401, 401, 401, 401, 429]
        # Each process decides with what the other shared at its last call, plus its own.
        assert [r.headers["ratelimit"].split(";t=")[0] for r in answers] == [
            '"ip";r=2',  # a: its own 1; shares it
            '"ip";r=2',  # b: its own 1 (a's not seen yet); shares it, learns the total, 2
            '"ip";r=1',  # a: the 1 it learnt, and this one; shares, learns 3
            '"ip";r=0',  # b: the 2 it learnt, and this one; shares, learns 4
            '"ip";r=0',  # a: the 3 it learnt, and this one: past the quota of 3
        ]
        async with session_scope(create_sessionmaker(engines[0])) as session:
            stored = await session.scalar(
                select(RateLimitWindow.hits).where(RateLimitWindow.key == f"ip:{address}")
            )
        # The refused call is counted in a, to go with its next flush.
        assert stored == 4


class TestPurge:
    async def test_the_periodic_task_deletes_windows_that_ended_a_window_ago(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        now = datetime.now(UTC)
        settings = limited(window=60)
        starts = {
            "gone": now - timedelta(minutes=10),
            "ended-just-now": now - timedelta(seconds=90),
            "current": now - timedelta(seconds=10),
        }
        async with session_scope(sessionmaker) as session:
            session.add_all(
                RateLimitWindow(key=f"ip:{name}", window_start=start, hits=1)
                for name, start in starts.items()
            )
        async with session_scope(sessionmaker) as session:
            await purge_old_windows(
                JobContext(
                    session=session,
                    settings=settings,
                    job_id=1,
                    workspace_id=None,
                    payload={},
                    attempt=1,
                )
            )
        async with session_scope(sessionmaker) as session:
            # Only these rows: tests whose requests really commit leave counts of their own.
            ours = [f"ip:{name}" for name in starts]
            left = await session.scalars(
                select(RateLimitWindow.key).where(RateLimitWindow.key.in_(ours))
            )
            assert sorted(left) == ["ip:current", "ip:ended-just-now"]
