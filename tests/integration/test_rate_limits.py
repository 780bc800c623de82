"""Rate limits of the public calls: per client IP and per invitation token, counted in
PostgreSQL (so shared by every worker), with the IETF RateLimit fields and a 429 past a quota."""

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from functools import partial

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.db import create_sessionmaker, get_sessionmaker
from app.guard import counters_of, counters_on
from tests.support.clock import Clock
from tests.support.guard import (
    MID_WINDOW,
    PUBLIC,
    allow_origins,
    bearer,
    guarded_app,
    issued_tokens,
    limited,
    visitor,
)
from tests.support.harness import Tenant
from tests.support.problems import problem

OTHER_ADDRESS = "198.51.100.20"
SITE = "https://app.example.com"


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


AppWith = Callable[..., FastAPI]


@pytest.fixture
def app_with(sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> AppWith:
    """guarded_app(settings[, clock]) on the test's database."""
    return partial(guarded_app, sessionmaker, engine)


class TestPublicCallsRateLimit:
    async def test_every_answer_carries_the_ratelimit_fields(
        self, tenant: Tenant, app_with: AppWith
    ) -> None:
        [token] = await issued_tokens(tenant)
        app = app_with(limited(per_ip=5, per_token=3))

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
        self, tenant: Tenant, app_with: AppWith
    ) -> None:
        [token] = await issued_tokens(tenant)
        app = app_with(limited(per_ip=10, per_token=2))

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
        self, tenant: Tenant, app_with: AppWith
    ) -> None:
        first, second = await issued_tokens(tenant, 2)
        app = app_with(limited(per_ip=2, per_token=10))

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

    async def test_ip_and_token_are_counted_apart(self, tenant: Tenant, app_with: AppWith) -> None:
        first, second = await issued_tokens(tenant, 2)
        app = app_with(limited(per_ip=10, per_token=1))

        async with visitor(app) as client, visitor(app, address=OTHER_ADDRESS) as elsewhere:
            assert (await client.get(PUBLIC, headers=bearer(first))).status_code == 200
            # Another token from the same address has a quota of its own...
            assert (await client.get(PUBLIC, headers=bearer(second))).status_code == 200
            # ...and a token keeps its count from wherever it is used.
            moved = await elsewhere.get(PUBLIC, headers=bearer(first))

        assert problem(moved, 429)["violated-policies"] == ["token"]
        assert moved.headers["ratelimit"] == '"ip";r=9;t=30, "token";r=0;t=30'

    async def test_guessed_tokens_are_counted_against_the_address(
        self, tenant: Tenant, app_with: AppWith
    ) -> None:
        [token] = await issued_tokens(tenant)
        app = app_with(limited(per_ip=3, per_token=10))

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

    async def test_a_new_window_starts_a_new_count(self, tenant: Tenant, app_with: AppWith) -> None:
        [token] = await issued_tokens(tenant)
        clock = Clock(MID_WINDOW)
        app = app_with(limited(per_ip=10, per_token=1), clock)

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
        self, tenant: Tenant, app_with: AppWith
    ) -> None:
        [token] = await issued_tokens(tenant)
        app = app_with(limited(per_ip=0, per_token=0))

        async with visitor(app) as client:
            answers = [await client.get(PUBLIC, headers=bearer(token)) for _ in range(3)]

        assert [r.status_code for r in answers] == [200, 200, 200]
        assert not {"ratelimit", "ratelimit-policy"} & set(answers[-1].headers)

    async def test_other_paths_are_not_limited(self, tenant: Tenant, app_with: AppWith) -> None:
        app = app_with(limited(per_ip=1, per_token=1))

        async with visitor(app) as client:
            answers = [
                await client.get("/v1/settings", headers=bearer(tenant.admin_key)) for _ in range(3)
            ]

        assert [r.status_code for r in answers] == [200, 200, 200]
        # The API's own quotas (tests/integration/test_api_rate_limits.py), not the public ones.
        policy = answers[-1].headers["ratelimit-policy"]
        assert policy.startswith('"ip";q=120000;w=60'), policy


class TestSharedThroughTheLookup:
    async def test_another_process_learns_the_counts_from_the_token_lookup(
        self, tenant: Tenant, app_with: AppWith
    ) -> None:
        [token] = await issued_tokens(tenant)
        settings = limited(per_ip=10, per_token=5).model_copy(
            update={"rate_limit_flush_seconds": 0.001}
        )
        first, second = app_with(settings), app_with(settings)

        async with visitor(first) as a, visitor(second) as b:
            for _ in range(3):
                assert (await a.get(PUBLIC, headers=bearer(token))).status_code == 200
                await asyncio.sleep(0.005)
            # Counted before its own flush: b has seen only itself.
            seen = await b.get(PUBLIC, headers=bearer(token))
            await asyncio.sleep(0.005)
            later = await b.get(PUBLIC, headers=bearer(token))

        assert seen.headers["ratelimit"] == '"ip";r=9;t=30, "token";r=4;t=30'
        # The look-up of `seen` brought back all four: `later` is the fifth.
        assert later.headers["ratelimit"] == '"ip";r=5;t=30, "token";r=0;t=30'


def guard_away(app_with: AppWith, nowhere: AsyncEngine) -> FastAPI:
    """An app whose guard's own statements (app.guard.Counters) find no database; its routes'
    do."""
    app = app_with(limited())
    counters = counters_on(nowhere)
    app.dependency_overrides[counters_of] = lambda scope: counters
    return app


class TestDatabaseAway:
    """The guard's own statement is the CORS question where no route looks a token up."""

    @pytest.fixture
    async def nowhere(self) -> AsyncIterator[AsyncEngine]:
        engine = create_async_engine(
            "postgresql+asyncpg://nobody@127.0.0.1:1/none", connect_args={"timeout": 2}
        )
        yield engine
        await engine.dispose()

    async def test_a_preflight_is_answered_503(
        self, tenant: Tenant, app_with: AppWith, nowhere: AsyncEngine
    ) -> None:
        await allow_origins(tenant, SITE)
        app = guard_away(app_with, nowhere)

        async with visitor(app, origin=SITE) as browser:
            r = await browser.options(PUBLIC, headers={"Access-Control-Request-Method": "GET"})

        assert problem(r, 503) == {
            "type": "/problems/service-unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": "the database is unavailable; retry later",
        }
        assert r.headers["retry-after"] == "5"
        assert "access-control-allow-origin" not in r.headers

    async def test_an_answer_it_cannot_ask_about_is_readable_by_no_page(
        self, tenant: Tenant, app_with: AppWith, nowhere: AsyncEngine
    ) -> None:
        await allow_origins(tenant, SITE)
        app = guard_away(app_with, nowhere)

        async with visitor(app, origin=SITE) as browser:
            missing = await browser.get(PUBLIC)  # no token: no route looks one up

        assert problem(missing, 401)["type"] == "/problems/unauthorized"
        assert "access-control-allow-origin" not in missing.headers
        assert missing.headers["vary"] == "Origin"

    async def test_a_call_with_a_token_is_answered_by_its_lookup(
        self, tenant: Tenant, app_with: AppWith, nowhere: AsyncEngine
    ) -> None:
        [token] = await issued_tokens(tenant)
        await allow_origins(tenant, SITE)
        app = guard_away(app_with, nowhere)

        async with visitor(app, origin=SITE) as browser:
            r = await browser.get(PUBLIC, headers=bearer(token))

        # The guard's own statement could not have answered: the token's look-up did.
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == SITE

    async def test_a_call_is_answered_503_and_changes_nothing(
        self, tenant: Tenant, app_with: AppWith, nowhere: AsyncEngine
    ) -> None:
        [token] = await issued_tokens(tenant)
        app = app_with(limited())
        away = create_sessionmaker(nowhere)
        app.dependency_overrides[get_sessionmaker] = lambda: away

        async with visitor(app) as client:
            r = await client.get(PUBLIC, headers=bearer(token))

        assert problem(r, 503)["type"] == "/problems/service-unavailable"
        [invitation] = (await tenant.client.get("/v1/invitations")).json()["data"]
        assert invitation["status"] == "issued"  # the call never reached the endpoint


class TestHostedPageRateLimit:
    async def test_the_page_counts_its_token_and_refuses_with_an_html_page(
        self, tenant: Tenant, app_with: AppWith
    ) -> None:
        [token] = await issued_tokens(tenant)
        app = app_with(limited(per_ip=10, per_token=2))

        async with visitor(app) as client:
            pages = [await client.get(f"/s/{token}") for _ in range(3)]
            # The token's quota is spent on the page and the JSON calls alike.
            api = await client.get("/v1/public/invitation", headers=bearer(token))

        assert [r.status_code for r in pages] == [200, 200, 429]
        assert pages[0].headers["ratelimit"].startswith('"ip";r=9;t=')
        refused = pages[2]
        assert refused.headers["content-type"].startswith("text/html")
        assert refused.headers["retry-after"] == refused.headers["ratelimit"].split("t=")[-1]
        assert "default-src 'none'" in refused.headers["content-security-policy"]
        assert refused.headers["referrer-policy"] == "no-referrer"
        assert "ratelimit-policy" in refused.headers
        assert "<html" in refused.text
        assert 'href="/s/assets/page.css"' in refused.text  # styled like the other pages
        assert "access-control-allow-origin" not in refused.headers
        assert api.status_code == 429
