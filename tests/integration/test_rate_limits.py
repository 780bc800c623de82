"""Rate limits of the public calls: per client IP and per invitation token, counted in
PostgreSQL (so shared by every worker), with the IETF RateLimit fields and a 429 past a quota."""

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_asyncio
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings
from app.db import create_engine, create_sessionmaker, session_scope
from app.guard import counters_of, counters_on
from app.jobs import JobContext
from app.models import RateLimitWindow
from app.services.invitation_tokens import hash_token
from app.services.rate_limits import purge_old_windows, token_key
from tests.support.clock import Clock
from tests.support.guard import (
    MID_WINDOW,
    PUBLIC,
    bearer,
    guarded_app,
    issued_tokens,
    limited,
    visitor,
)
from tests.support.harness import Tenant, build_app
from tests.support.problems import problem

OTHER_ADDRESS = "198.51.100.20"


def guess() -> str:
    return "npsi_" + secrets.token_urlsafe(32)


def refused(violated: list[str], detail: str) -> dict[str, object]:
    return {
        "type": "/problems/rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": detail,
        "violated-policies": violated,
    }


class TestPublicCallsRateLimit:
    async def test_every_answer_carries_the_ratelimit_fields(
        self,
        tenant: Tenant,
        sessionmaker: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
    ) -> None:
        [token] = await issued_tokens(tenant)
        app = guarded_app(sessionmaker, engine, limited(per_ip=5, per_token=3))

        async with visitor(app) as client:
            first = await client.get(PUBLIC, headers=bearer(token))
            second = await client.get(PUBLIC, headers=bearer(token))

        assert (first.status_code, second.status_code) == (200, 200)
        for r in (first, second):
            assert r.headers["ratelimit-policy"] == '"ip";q=5;w=60, "token";q=3;w=60'
        assert first.headers["ratelimit"] == '"ip";r=4;t=30, "token";r=2;t=30'
        assert second.headers["ratelimit"] == '"ip";r=3;t=30, "token";r=1;t=30'
        assert "retry-after" not in second.headers

    async def test_the_call_past_the_token_quota_is_429(
        self,
        tenant: Tenant,
        sessionmaker: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
    ) -> None:
        [token] = await issued_tokens(tenant)
        app = guarded_app(sessionmaker, engine, limited(per_ip=10, per_token=2))

        async with visitor(app) as client:
            allowed = [await client.get(PUBLIC, headers=bearer(token)) for _ in range(2)]
            r = await client.get(PUBLIC, headers=bearer(token))

        assert [a.status_code for a in allowed] == [200, 200]
        body = problem(r, 429)
        detail = "too many requests with this invitation token; retry in 30 seconds"
        assert body == refused(["token"], detail)
        assert r.headers["retry-after"] == "30"
        assert r.headers["ratelimit"] == '"ip";r=7;t=30, "token";r=0;t=30'
        assert r.headers["ratelimit-policy"] == '"ip";q=10;w=60, "token";q=2;w=60'

    async def test_the_call_past_the_ip_quota_is_429_and_counts_no_token(
        self,
        tenant: Tenant,
        sessionmaker: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
    ) -> None:
        first, second = await issued_tokens(tenant, 2)
        app = guarded_app(sessionmaker, engine, limited(per_ip=2, per_token=10))

        async with visitor(app) as client:
            allowed = [await client.get(PUBLIC, headers=bearer(t)) for t in (first, second)]
            r = await client.get(PUBLIC, headers=bearer(second))
        async with visitor(app, address=OTHER_ADDRESS) as elsewhere:
            later = await elsewhere.get(PUBLIC, headers=bearer(second))

        assert [a.status_code for a in allowed] == [200, 200]
        body = problem(r, 429)
        assert body == refused(["ip"], "too many requests from this address; retry in 30 seconds")
        assert r.headers["retry-after"] == "30"
        assert r.headers["ratelimit"] == '"ip";r=0;t=30'
        # The refused call did not use the token's quota: this is its second use.
        assert later.status_code == 200
        assert later.headers["ratelimit"] == '"ip";r=1;t=30, "token";r=8;t=30'

    async def test_ip_and_token_are_counted_apart(
        self,
        tenant: Tenant,
        sessionmaker: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
    ) -> None:
        first, second = await issued_tokens(tenant, 2)
        app = guarded_app(sessionmaker, engine, limited(per_ip=10, per_token=1))

        async with visitor(app) as client, visitor(app, address=OTHER_ADDRESS) as elsewhere:
            assert (await client.get(PUBLIC, headers=bearer(first))).status_code == 200
            # Another token from the same address has a quota of its own...
            assert (await client.get(PUBLIC, headers=bearer(second))).status_code == 200
            # ...and a token keeps its count from wherever it is used.
            moved = await elsewhere.get(PUBLIC, headers=bearer(first))

        assert problem(moved, 429)["violated-policies"] == ["token"]
        assert moved.headers["ratelimit"] == '"ip";r=9;t=30, "token";r=0;t=30'

    async def test_guessed_tokens_are_counted_against_the_address(
        self,
        tenant: Tenant,
        sessionmaker: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
    ) -> None:
        [token] = await issued_tokens(tenant)
        app = guarded_app(sessionmaker, engine, limited(per_ip=3, per_token=10))

        async with visitor(app) as client:
            guesses = [await client.get(PUBLIC, headers=bearer(guess())) for _ in range(3)]
            r = await client.get(PUBLIC, headers=bearer(token))

        assert [problem(g, 401)["type"] for g in guesses] == ["/problems/unauthorized"] * 3
        assert [g.headers["ratelimit"].split(",")[0] for g in guesses] == [
            '"ip";r=2;t=30',
            '"ip";r=1;t=30',
            '"ip";r=0;t=30',
        ]
        assert problem(r, 429)["violated-policies"] == ["ip"]

    async def test_a_new_window_starts_a_new_count(
        self,
        tenant: Tenant,
        sessionmaker: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
    ) -> None:
        [token] = await issued_tokens(tenant)
        clock = Clock(MID_WINDOW)
        app = guarded_app(sessionmaker, engine, limited(per_ip=10, per_token=1), clock)

        async with visitor(app) as client:
            assert (await client.get(PUBLIC, headers=bearer(token))).status_code == 200
            clock.advance(29.5)  # 0.5 s before the window ends
            late = await client.get(PUBLIC, headers=bearer(token))
            clock.advance(0.5)
            fresh = await client.get(PUBLIC, headers=bearer(token))

        assert problem(late, 429)["detail"].endswith("retry in 1 second")
        assert late.headers["retry-after"] == "1"
        assert fresh.status_code == 200
        assert fresh.headers["ratelimit"] == '"ip";r=9;t=60, "token";r=0;t=60'

    async def test_limits_at_zero_are_off_and_send_no_fields(
        self,
        tenant: Tenant,
        sessionmaker: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
    ) -> None:
        [token] = await issued_tokens(tenant)
        app = guarded_app(sessionmaker, engine, limited(per_ip=0, per_token=0))

        async with visitor(app) as client:
            answers = [await client.get(PUBLIC, headers=bearer(token)) for _ in range(3)]

        assert [r.status_code for r in answers] == [200, 200, 200]
        assert not {"ratelimit", "ratelimit-policy"} & set(answers[-1].headers)

    async def test_other_paths_are_not_limited(
        self,
        tenant: Tenant,
        sessionmaker: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
    ) -> None:
        app = guarded_app(sessionmaker, engine, limited(per_ip=1, per_token=1))

        async with visitor(app) as client:
            answers = [
                await client.get("/v1/settings", headers=bearer(tenant.admin_key)) for _ in range(3)
            ]

        assert [r.status_code for r in answers] == [200, 200, 200]
        assert "ratelimit" not in answers[-1].headers


@pytest_asyncio.fixture(loop_scope="session")
async def two_workers(
    database_url: str,
) -> AsyncIterator[tuple[list[AsyncEngine], str, str]]:
    """Two engines as two processes have them, and an address and token no other test uses;
    their counters commit for real, so they are deleted afterwards."""
    settings = Settings()
    engines = [create_engine(database_url, settings, application_name="nps-api") for _ in "ab"]
    address = f"192.0.2.{uuid.uuid4().int % 250 + 1}"
    token = guess()
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
            # The production counters: an autocommit connection of each process's own engine.
            app = build_app(create_sessionmaker(engine), engine, settings=limited(per_ip=3))
            counters = counters_on(engine)
            app.dependency_overrides[counters_of] = lambda scope, counters=counters: counters
            apps.append(app)

        async with visitor(apps[0], address=address) as a, visitor(apps[1], address=address) as b:
            answers = [
                await a.get(PUBLIC, headers=bearer(token)),
                await b.get(PUBLIC, headers=bearer(token)),
                await a.get(PUBLIC, headers=bearer(token)),
                await b.get(PUBLIC, headers=bearer(token)),
            ]

        assert [r.status_code for r in answers] == [401, 401, 401, 429]
        # Each process saw the other's calls: the address's count went on across them.
        assert [r.headers["ratelimit"].split(";t=")[0] for r in answers] == [
            '"ip";r=2',
            '"ip";r=1',
            '"ip";r=0',
            '"ip";r=0',
        ]


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
            left = await session.scalars(
                select(RateLimitWindow.key).where(RateLimitWindow.key.like("ip:%"))
            )
            assert sorted(left) == ["ip:current", "ip:ended-just-now"]


class TestDatabaseAway:
    async def test_the_guard_answers_503_and_lets_nothing_through(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
    ) -> None:
        [token] = await issued_tokens(tenant)
        nowhere = create_async_engine(
            "postgresql+asyncpg://nobody@127.0.0.1:1/none", connect_args={"timeout": 2}
        )
        app = guarded_app(sessionmaker, engine, limited())
        counters = counters_on(nowhere)
        app.dependency_overrides[counters_of] = lambda scope: counters
        try:
            async with visitor(app) as client:
                r = await client.get(PUBLIC, headers=bearer(token))
        finally:
            await nowhere.dispose()

        assert problem(r, 503) == {
            "type": "/problems/service-unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": "the database is unavailable; retry later",
        }
        assert r.headers["retry-after"] == "5"
        [invitation] = (await tenant.client.get("/v1/invitations")).json()["data"]
        assert invitation["status"] == "issued"  # the call never reached the endpoint
