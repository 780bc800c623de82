"""Rate limits of the authenticated API: per API key and per client IP, counted in each process
and shared through rate_limit_windows by the authentication statement, and floods of wrong keys
refused before any key is looked up."""

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.api import auth
from app.config import Settings
from app.guard import counters_of, counters_on
from app.models import RateLimitWindow, Scope
from app.services.keys import authenticate
from tests.support.guard import ADDRESS, MID_WINDOW, bearer, visitor
from tests.support.harness import Tenant, build_app
from tests.support.problems import problem

OTHER_ADDRESS = "198.51.100.20"


def api_limited(
    *,
    per_key: int = 1000,
    per_ip: int = 1000,
    failures: int = 1000,
    flush: float = 60.0,
    delay: float = 0.0,
) -> Settings:
    return Settings(
        database_url="postgresql://unused@localhost/unused",
        api_rate_limit_per_key=per_key,
        api_rate_limit_per_ip=per_ip,
        api_failed_auth_per_ip=failures,
        api_rate_limit_window_seconds=60,
        rate_limit_flush_seconds=flush,
        api_refusal_delay_seconds=delay,
    )


AppWith = Callable[[Settings], FastAPI]


@pytest.fixture
def app_with(sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> AppWith:
    from tests.support.clock import Clock

    def make(settings: Settings) -> FastAPI:
        return build_app(sessionmaker, engine, settings=settings, clock=Clock(MID_WINDOW))

    return make


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every API key the app looks up in the database (authenticate still runs)."""
    seen: list[str] = []
    real = authenticate

    async def counting(session: AsyncSession, raw: str, **kwargs: Any) -> Any:
        seen.append(raw)
        return await real(session, raw, **kwargs)

    monkeypatch.setattr(auth, "authenticate", counting)
    return seen


def wrong_key() -> str:
    return "nps_" + secrets.token_urlsafe(32)


async def stored_hits(sessionmaker: async_sessionmaker[AsyncSession], key: str) -> int | None:
    async with sessionmaker() as session:
        return await session.scalar(select(RateLimitWindow.hits).where(RateLimitWindow.key == key))


class TestApiRateLimits:
    async def test_answers_carry_the_ratelimit_fields_of_the_ip_and_the_key(
        self, tenant: Tenant, app_with: AppWith
    ) -> None:
        app = app_with(api_limited(per_key=5, per_ip=7))

        async with visitor(app) as client:
            answers = [await client.get("/v1/accounts", headers=bearer(tenant.admin_key))]
            answers.append(await client.get("/v1/accounts", headers=bearer(tenant.admin_key)))

        assert [r.status_code for r in answers] == [200, 200]
        # The key is counted once it is known to work in this process.
        assert answers[0].headers["ratelimit"] == '"ip";r=6;t=30'
        assert answers[1].headers["ratelimit-policy"] == '"ip";q=7;w=60, "key";q=5;w=60'
        assert answers[1].headers["ratelimit"] == '"ip";r=5;t=30, "key";r=4;t=30'

    async def test_the_call_past_the_key_quota_is_429_and_another_key_goes_on(
        self, tenant: Tenant, app_with: AppWith
    ) -> None:
        app = app_with(api_limited(per_key=2))
        other = await tenant.make_key(Scope.READ)

        async with visitor(app) as client:
            statuses = [
                (await client.get("/v1/accounts", headers=bearer(tenant.admin_key))).status_code
                for _ in range(4)
            ]
            refused = await client.get("/v1/accounts", headers=bearer(tenant.admin_key))
            fine = await client.get("/v1/accounts", headers=bearer(other))

        assert statuses == [200, 200, 200, 429]
        assert problem(refused, 429) == {
            "type": "/problems/rate-limited",
            "title": "Too many requests",
            "status": 429,
            "detail": "too many requests with this API key; retry in 30 seconds",
            "violated-policies": ["key"],
        }
        assert refused.headers["retry-after"] == "30"
        assert fine.status_code == 200

    async def test_the_call_past_the_ip_quota_is_429_from_that_address_only(
        self, tenant: Tenant, app_with: AppWith
    ) -> None:
        app = app_with(api_limited(per_ip=2))

        async with visitor(app) as near, visitor(app, address=OTHER_ADDRESS) as far:
            statuses = [
                (await near.get("/v1/accounts", headers=bearer(tenant.admin_key))).status_code
                for _ in range(3)
            ]
            elsewhere = await far.get("/v1/accounts", headers=bearer(tenant.admin_key))

        assert statuses == [200, 200, 429]
        assert elsewhere.status_code == 200


class TestSharedCounts:
    async def test_another_process_sees_the_counts_after_a_flush(
        self,
        tenant: Tenant,
        app_with: AppWith,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        settings = api_limited(per_ip=10, flush=0.001)
        first, second = app_with(settings), app_with(settings)

        async with visitor(first) as a, visitor(second) as b:
            for _ in range(4):
                assert (await a.get("/v1/accounts", headers=bearer(tenant.admin_key))).is_success
                await asyncio.sleep(0.005)
            # Counted before its own flush: b has seen only itself.
            seen = await b.get("/v1/accounts", headers=bearer(tenant.admin_key))
            await asyncio.sleep(0.005)
            later = await b.get("/v1/accounts", headers=bearer(tenant.admin_key))

        assert seen.headers["ratelimit"] == '"ip";r=9;t=30'
        # The flush of `seen` brought back all five: `later` is the sixth.
        assert later.headers["ratelimit"].startswith('"ip";r=4;')
        assert await stored_hits(sessionmaker, f"api-ip:{ADDRESS}") == 6

    async def test_counts_of_a_request_that_rolled_back_are_shared_on_their_own(
        self,
        tenant: Tenant,
        app_with: AppWith,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        app = app_with(api_limited(flush=0.001))

        async with visitor(app) as client:
            for n in range(3):
                # 404: the request's transaction, and the flush it carried, roll back; the
                # counts are then written by a statement of their own, once.
                r = await client.get("/v1/accounts/nobody", headers=bearer(tenant.admin_key))
                assert r.status_code == 404
                assert await stored_hits(sessionmaker, f"api-ip:{ADDRESS}") == n + 1
                await asyncio.sleep(0.005)
            ok = await client.get("/v1/accounts", headers=bearer(tenant.admin_key))

        assert ok.status_code == 200
        assert ok.headers["ratelimit"].startswith('"ip";r=996;')
        assert await stored_hits(sessionmaker, f"api-ip:{ADDRESS}") == 4

    async def test_counts_that_could_not_be_shared_go_with_the_next_flush(
        self,
        tenant: Tenant,
        app_with: AppWith,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        app = app_with(api_limited(flush=0.001))
        nowhere = create_async_engine(
            "postgresql+asyncpg://nobody@127.0.0.1:1/none", connect_args={"timeout": 2}
        )
        real = app.dependency_overrides[counters_of]
        # The test's clock still, on a database that is not there.
        counters = replace(real({}), begin=counters_on(nowhere).begin)
        app.dependency_overrides[counters_of] = lambda scope: counters
        try:
            async with visitor(app) as client:
                r = await client.get("/v1/accounts/nobody", headers=bearer(tenant.admin_key))
                assert r.status_code == 404
                assert await stored_hits(sessionmaker, f"api-ip:{ADDRESS}") is None
                app.dependency_overrides[counters_of] = real
                await asyncio.sleep(0.005)
                ok = await client.get("/v1/accounts", headers=bearer(tenant.admin_key))
        finally:
            await nowhere.dispose()

        assert ok.status_code == 200
        assert await stored_hits(sessionmaker, f"api-ip:{ADDRESS}") == 2


class TestWrongKeyFlood:
    async def test_a_key_that_failed_is_refused_again_without_a_lookup(
        self, tenant: Tenant, app_with: AppWith, lookups: list[str]
    ) -> None:
        app = app_with(api_limited())
        guess = wrong_key()

        async with visitor(app) as client:
            answers = [await client.get("/v1/accounts", headers=bearer(guess)) for _ in range(3)]

        assert [r.status_code for r in answers] == [401, 401, 401]
        assert problem(answers[2], 401)["detail"] == "the API key is unknown or revoked"
        assert answers[2].headers["www-authenticate"] == "Bearer"
        assert lookups == [guess]

    async def test_an_address_past_its_lookups_is_refused_unknown_keys_before_a_lookup(
        self, tenant: Tenant, app_with: AppWith, lookups: list[str]
    ) -> None:
        app = app_with(api_limited(failures=3))
        guesses = [wrong_key() for _ in range(6)]

        async with visitor(app) as client, visitor(app, address=OTHER_ADDRESS) as other:
            # The admin key works before the flood (its look-up counted, and was refunded when
            # it worked), so it is known to this process.
            assert (await client.get("/v1/accounts", headers=bearer(tenant.admin_key))).is_success
            flood = [await client.get("/v1/accounts", headers=bearer(g)) for g in guesses]
            legitimate = await client.get("/v1/accounts", headers=bearer(tenant.admin_key))
            elsewhere = await other.get("/v1/accounts", headers=bearer(wrong_key()))

        assert [r.status_code for r in flood] == [401, 401, 401, 429, 429, 429]
        assert problem(flood[3], 429) == {
            "type": "/problems/rate-limited",
            "title": "Too many requests",
            "status": 429,
            "detail": "too many requests with unknown API keys from this address; retry in 30 "
            "seconds",
            "violated-policies": ["failed-auth"],
        }
        assert flood[3].headers["retry-after"] == "30"
        assert flood[3].headers["ratelimit-policy"] == '"failed-auth";q=3;w=60'
        assert lookups[:5] == [tenant.admin_key, *guesses[:3], tenant.admin_key]
        assert legitimate.status_code == 200
        assert elsewhere.status_code == 401

    async def test_keys_that_work_never_use_up_the_failure_quota(
        self, tenant: Tenant, app_with: AppWith, lookups: list[str]
    ) -> None:
        app = app_with(api_limited(failures=3))
        keys = [await tenant.make_key(Scope.READ) for _ in range(5)]

        async with visitor(app) as client:
            first = [await client.get("/v1/accounts", headers=bearer(k)) for k in keys]
            guesses = [await client.get("/v1/accounts", headers=bearer(wrong_key())) for _ in "abc"]
            over = await client.get("/v1/accounts", headers=bearer(wrong_key()))

        assert [r.status_code for r in first] == [200] * 5
        assert lookups[:5] == keys
        assert [r.status_code for r in guesses] == [401, 401, 401]
        assert over.status_code == 429

    async def test_refusals_from_memory_are_held_back(
        self, tenant: Tenant, app_with: AppWith
    ) -> None:
        app = app_with(api_limited(delay=0.3))
        guess = wrong_key()

        async with visitor(app) as client:
            looked_up = await client.get("/v1/accounts", headers=bearer(guess))
            started = asyncio.get_running_loop().time()
            again = await client.get("/v1/accounts", headers=bearer(guess))
            waited = asyncio.get_running_loop().time() - started

        assert (looked_up.status_code, again.status_code) == (401, 401)
        assert waited >= 0.3

    async def test_a_revoked_key_that_worked_is_looked_up_and_refused(
        self, tenant: Tenant, app_with: AppWith
    ) -> None:
        app = app_with(api_limited())
        key = await tenant.make_key(Scope.READ)

        async with visitor(app) as client:
            before = await client.get("/v1/accounts", headers=bearer(key))
            revoked = await tenant.client.delete(f"/v1/api-keys/{key[:12]}")
            after = await client.get("/v1/accounts", headers=bearer(key))

        assert (before.status_code, revoked.status_code, after.status_code) == (200, 204, 401)
