"""Security headers on every answer (app.middleware.SecurityHeaders), and the API's documents
in production only when NPS_DOCS_IN_PRODUCTION says so."""

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from tests.support.harness import TEST_SETTINGS, Tenant, build_app, client_for, new_tenant

API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def _production(**values: object) -> Settings:
    return Settings.model_validate(
        {
            **TEST_SETTINGS,
            "env": "production",
            "key_pepper": "a-pepper-for-the-tests-only-0123456789",
            **values,
        }
    )


def _assert_api_headers(r: httpx.Response, cache: str = "no-store") -> None:
    assert r.headers["cache-control"] == cache
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == API_POLICY


class TestApiAnswers:
    async def test_an_authenticated_answer_is_never_stored(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/accounts")
        assert r.status_code == 200, r.text
        _assert_api_headers(r)
        assert "strict-transport-security" not in r.headers  # not in development

    @pytest.mark.parametrize(
        ("method", "path", "cache"),
        [
            ("POST", "/v1/responses", "no-store"),
            ("GET", "/v1/accounts/nobody", "no-store"),
            # A report with an ETag (app.api.report_tags): revalidated, never stored shared.
            ("GET", "/v1/nps", "private, no-cache"),
            ("GET", "/healthz", "no-store"),
        ],
    )
    async def test_writes_reads_and_errors_carry_them(
        self, tenant: Tenant, method: str, path: str, cache: str
    ) -> None:
        _assert_api_headers(await tenant.client.request(method, path, json={}), cache)

    async def test_a_refused_key_carries_them(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/accounts", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
        _assert_api_headers(r)

    async def test_an_answer_with_an_etag_is_revalidated_not_refused_to_caches(
        self, tenant: Tenant
    ) -> None:
        r = await tenant.client.get("/v1/settings")
        assert "etag" in r.headers
        _assert_api_headers(r, "private, no-cache")
        again = await tenant.client.get(
            "/v1/settings", headers={"If-None-Match": r.headers["etag"]}
        )
        assert again.status_code == 304
        assert again.headers["cache-control"] == "private, no-cache"

    async def test_an_asset_keeps_its_own_caching(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/widget.js")
        assert r.headers["cache-control"] == "public, max-age=3600"
        assert r.headers["x-content-type-options"] == "nosniff"

    async def test_the_docs_are_never_framed_but_run_their_scripts(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/docs")
        assert r.status_code == 200
        policy = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy.split("; ")
        assert "script-src 'self' 'unsafe-inline'" in policy.split("; ")


@pytest_asyncio.fixture(loop_scope="session")
async def production(
    sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> AsyncIterator[Tenant]:
    app = build_app(sessionmaker, engine, settings=_production())
    tenant = await new_tenant(sessionmaker, app, "production")
    yield tenant
    await tenant.client.aclose()


class TestProduction:
    async def test_answers_carry_hsts(self, production: Tenant) -> None:
        r = await production.client.get("/v1/accounts")
        assert r.headers["strict-transport-security"] == "max-age=31536000"
        _assert_api_headers(r)

    @pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
    async def test_the_documents_are_not_served(self, production: Tenant, path: str) -> None:
        r = await production.client.get(path)
        assert r.status_code == 404, r.text

    @pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
    async def test_a_setting_serves_the_documents(
        self, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine, path: str
    ) -> None:
        app = build_app(sessionmaker, engine, settings=_production(docs_in_production=True))
        async with client_for(app) as client:
            r = await client.get(path)
        assert r.status_code == 200, r.text
