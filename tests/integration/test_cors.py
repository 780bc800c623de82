"""CORS on the public calls: the workspace's allowed_origins, no credentials, preflights, and
nothing of it anywhere else."""

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.support.guard import (
    PUBLIC,
    allow_origins,
    bearer,
    cors_headers,
    guarded_app,
    issued_tokens,
    limited,
    visitor,
)
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import problem

SITE = "https://app.example.com"
OTHER_SITE = "https://other.example.org"
EXPOSED = "RateLimit, RateLimit-Policy, Retry-After"
PREFLIGHT = {
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization",
}


@pytest.fixture
def app(sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> FastAPI:
    return guarded_app(sessionmaker, engine, limited())


def allowed(origin: str) -> dict[str, str]:
    """The CORS headers of an actual answer that `origin` may read."""
    return {
        "access-control-allow-origin": origin,
        "access-control-expose-headers": EXPOSED,
    }


class TestPreflight:
    async def test_an_origin_a_workspace_lists_is_answered(
        self, tenant: Tenant, app: FastAPI
    ) -> None:
        await allow_origins(tenant, SITE)

        async with visitor(app, origin=SITE) as browser:
            r = await browser.options(PUBLIC, headers=PREFLIGHT)

        assert (r.status_code, r.content) == (204, b"")
        assert cors_headers(r) == {
            **allowed(SITE),
            "access-control-allow-methods": "GET, POST, PATCH",
            "access-control-allow-headers": "Authorization, Content-Type, Idempotency-Key",
            "access-control-max-age": "600",
        }
        assert r.headers["vary"] == "Origin"

    async def test_the_preflight_of_a_write_is_answered_the_same(
        self, tenant: Tenant, app: FastAPI
    ) -> None:
        await allow_origins(tenant, SITE)
        write = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        }

        async with visitor(app, origin=SITE) as browser:
            r = await browser.options("/v1/public/answers", headers=write)

        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == SITE
        assert r.headers["access-control-allow-methods"] == "GET, POST, PATCH"

    async def test_an_origin_nobody_lists_gets_no_cors_headers(
        self, tenant: Tenant, app: FastAPI
    ) -> None:
        await allow_origins(tenant, SITE)

        async with visitor(app, origin=OTHER_SITE) as browser:
            r = await browser.options(PUBLIC, headers=PREFLIGHT)

        # The plain OPTIONS answer: the browser refuses to send the request.
        assert r.status_code == 204
        assert r.headers["allow"] == "GET, HEAD, OPTIONS"
        assert cors_headers(r) == {}
        assert r.headers["vary"] == "Origin"

    async def test_an_origin_differing_in_case_or_port_is_not_listed(
        self, tenant: Tenant, app: FastAPI
    ) -> None:
        await allow_origins(tenant, SITE)

        for near in (
            "https://APP.example.com",
            "https://app.example.com:8443",
            "http://app.example.com",
        ):
            async with visitor(app, origin=near) as browser:
                r = await browser.options(PUBLIC, headers=PREFLIGHT)
            assert cors_headers(r) == {}, near


class TestGetPublicInvitationCors:
    async def test_the_tokens_workspace_lists_the_origin(
        self, tenant: Tenant, app: FastAPI
    ) -> None:
        [token] = await issued_tokens(tenant)
        await allow_origins(tenant, OTHER_SITE, SITE)

        async with visitor(app, origin=SITE) as browser:
            r = await browser.get(PUBLIC, headers=bearer(token))

        assert r.status_code == 200, r.text
        assert cors_headers(r) == allowed(SITE)
        assert r.headers["vary"] == "Origin"

    async def test_an_unlisted_origin_gets_the_answer_without_allow_origin(
        self, tenant: Tenant, app: FastAPI
    ) -> None:
        [token] = await issued_tokens(tenant)
        await allow_origins(tenant, SITE)

        async with visitor(app, origin=OTHER_SITE) as browser:
            r = await browser.get(PUBLIC, headers=bearer(token))

        assert r.status_code == 200
        assert cors_headers(r) == {}
        assert r.headers["vary"] == "Origin"

    async def test_an_origin_only_another_workspace_lists_is_not_allowed(
        self, make_tenant: MakeTenant, app: FastAPI
    ) -> None:
        ours, theirs = await make_tenant("ours"), await make_tenant("theirs")
        [token] = await issued_tokens(ours)
        await allow_origins(ours, SITE)
        await allow_origins(theirs, OTHER_SITE)

        async with visitor(app, origin=OTHER_SITE) as browser:
            preflight = await browser.options(PUBLIC, headers=PREFLIGHT)
            r = await browser.get(PUBLIC, headers=bearer(token))

        # The preflight cannot know the workspace; the answer can, and the browser drops it.
        assert preflight.headers["access-control-allow-origin"] == OTHER_SITE
        assert r.status_code == 200
        assert cors_headers(r) == {}

    async def test_a_removed_origin_is_refused_at_once(self, tenant: Tenant, app: FastAPI) -> None:
        [token] = await issued_tokens(tenant)
        await allow_origins(tenant, SITE)
        await allow_origins(tenant)

        async with visitor(app, origin=SITE) as browser:
            r = await browser.get(PUBLIC, headers=bearer(token))
            preflight = await browser.options(PUBLIC, headers=PREFLIGHT)

        assert cors_headers(r) == {}
        assert cors_headers(preflight) == {}

    async def test_errors_carry_the_cors_headers_so_the_page_can_read_them(
        self, tenant: Tenant, app: FastAPI
    ) -> None:
        await allow_origins(tenant, SITE)

        async with visitor(app, origin=SITE) as browser:
            unknown = await browser.get(PUBLIC, headers=bearer("npsi_" + "x" * 43))
            missing = await browser.get(PUBLIC)

        for r in (unknown, missing):
            assert problem(r, 401)["type"] == "/problems/unauthorized"
            assert cors_headers(r) == allowed(SITE)

    async def test_without_origin_no_cors_headers_and_still_vary(
        self, tenant: Tenant, app: FastAPI
    ) -> None:
        [token] = await issued_tokens(tenant)
        await allow_origins(tenant, SITE)

        async with visitor(app) as server:
            r = await server.get(PUBLIC, headers=bearer(token))

        assert r.status_code == 200
        assert cors_headers(r) == {}
        assert r.headers["vary"] == "Origin"


class TestOtherPathsGetNoCors:
    @pytest.mark.parametrize("path", ["/v1/settings", "/v1/nps", "/healthz", "/v1/publicity"])
    async def test_no_cors_even_for_a_listed_origin(
        self, tenant: Tenant, app: FastAPI, path: str
    ) -> None:
        await allow_origins(tenant, SITE)
        headers = {"Origin": SITE, "Authorization": f"Bearer {tenant.admin_key}"}

        async with visitor(app) as browser:
            got = await browser.get(path, headers=headers)
            preflight = await browser.options(path, headers={**headers, **PREFLIGHT})

        for r in (got, preflight):
            assert cors_headers(r) == {}, (path, r.status_code)
            assert "origin" not in r.headers.get("vary", "").lower()
            # The API's quotas, not the public calls' (no token there).
            assert '"token"' not in r.headers.get("ratelimit-policy", "")
        assert preflight.status_code in (204, 404)


class TestEveryPublicRoute:
    async def test_each_is_guarded_whatever_it_answers(self, tenant: Tenant, app: FastAPI) -> None:
        await allow_origins(tenant, SITE)
        routes = [
            (method.upper(), path)
            for path, operations in app.openapi()["paths"].items()
            if path.startswith("/v1/public/")
            for method in operations
        ]

        async with visitor(app, origin=SITE) as browser:
            for method, path in routes:
                r = await browser.request(method, path, headers=bearer("npsi_" + "x" * 43))
                assert problem(r, 401)["type"] == "/problems/unauthorized", (method, path)
                assert cors_headers(r) == allowed(SITE), (method, path)
                assert r.headers["ratelimit"].startswith('"ip";r='), (method, path)

        assert len(routes) >= 5  # the invitation, answers (POST, PATCH), dismissals, unsubscribe
