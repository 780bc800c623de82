"""A request body that does not arrive in time (NPS_BODY_TIMEOUT_SECONDS) is answered 408 and
nothing of it is stored, wherever it was going."""

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import PROBLEM_JSON
from tests.support.api import count_responses, put_account, put_stakeholder
from tests.support.harness import TEST_SETTINGS, Tenant, build_app, new_tenant

BATCH = "/v1/responses/batch"
# Short, so a stalled body is answered soon; a body sent at once arrives well within it.
TIMEOUT = 0.3
# Without a body timeout the request would wait for ever: the test fails instead of hanging.
GIVE_UP = 30.0


@pytest_asyncio.fixture(loop_scope="session")
async def tenant(
    sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> AsyncIterator[Tenant]:
    settings = Settings(**TEST_SETTINGS, body_timeout_seconds=TIMEOUT)
    made = await new_tenant(sessionmaker, build_app(sessionmaker, engine, settings=settings), "t")
    await put_account(made.client, "acme", name="Acme")
    await put_stakeholder(made.client, "dana", role="decision_maker")
    yield made
    await made.client.aclose()


def _body() -> bytes:
    return json.dumps({"responses": [{"stakeholder_id": "dana", "score": 9}] * 3}).encode()


async def _post_stalled(client: httpx.AsyncClient, path: str, sent: bytes) -> httpx.Response:
    """POST whose body sends `sent` and then nothing more (the rest never comes)."""
    never = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield sent
        await never.wait()
        yield b""  # pragma: no cover - never reached

    request = client.post(path, content=stalled(), headers={"Content-Type": "application/json"})
    return await asyncio.wait_for(request, GIVE_UP)


def _assert_timed_out(r: httpx.Response) -> None:
    assert r.status_code == 408, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.headers["connection"] == "close"
    assert r.json() == {
        "type": "/problems/request-timeout",
        "title": "Request timeout",
        "status": 408,
        "detail": f"the request body did not arrive within {TIMEOUT:g} s: nothing was stored",
    }


class TestBodyTimeout:
    async def test_a_stalled_batch_is_408_and_nothing_stored(self, tenant: Tenant) -> None:
        body = _body()
        r = await _post_stalled(tenant.client, BATCH, body[: len(body) // 2])
        _assert_timed_out(r)
        assert await count_responses(tenant.client) == 0

    async def test_a_body_that_never_starts_is_408(self, tenant: Tenant) -> None:
        r = await _post_stalled(tenant.client, "/v1/responses", b"")
        _assert_timed_out(r)
        assert await count_responses(tenant.client) == 0

    async def test_a_stalled_upsert_is_408_and_the_account_unchanged(self, tenant: Tenant) -> None:
        r = await _post_stalled(tenant.client, "/v1/accounts/batch", b'{"accounts": [{"id": "x"')
        _assert_timed_out(r)
        assert (await tenant.client.get("/v1/accounts/x")).status_code == 404

    async def test_a_body_that_arrives_in_time_is_stored(self, tenant: Tenant) -> None:
        async def in_chunks() -> AsyncIterator[bytes]:
            body = _body()
            yield body[:10]
            await asyncio.sleep(0)
            yield body[10:]

        r = await tenant.client.post(
            BATCH, content=in_chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 200, r.text
        assert "connection" not in r.headers
        assert await count_responses(tenant.client) == 3
