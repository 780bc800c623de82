"""Large answers are built off the event loop, and /healthz answers from outside the app."""

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.api import bodies
from app.presenters.trends import trend_report
from tests.support.api import Answer
from tests.support.clock import utc
from tests.support.harness import Tenant, build_app, client_for

# A weekly trend over two years grouped by 20 accounts: 21 lines of 105 points.
TWO_YEARS = {"from": "2025-01-06T00:00:00Z", "to": "2027-01-04T00:00:00Z", "interval": "week"}
ACCOUNTS = 20
PRESENTER = "app.api.trend.trend_report"


async def _seed(tenant: Tenant) -> None:
    start = utc(2025, 1, 6)
    await tenant.db.answers(
        [
            Answer(f"p{a}-{w}", f"acct-{a:02}", (a + w) % 11, start + timedelta(weeks=w, hours=a))
            for a in range(ACCOUNTS)
            for w in range(0, 104, 13)
        ]
    )


def _held(build: Callable[..., Any], building: threading.Event, release: threading.Event) -> Any:
    """The presenter, made to hold its thread until `release`: a stand-in for a long build."""

    def held(*args: Any, **kwargs: Any) -> Any:
        building.set()
        release.wait(timeout=20)  # a stall, not a hang, when the build runs on the loop
        return build(*args, **kwargs)

    return held


class TestLargeAnswersOffTheLoop:
    async def test_healthz_is_answered_while_a_large_trend_is_built(
        self, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await _seed(tenant)
        building, release = threading.Event(), threading.Event()
        monkeypatch.setattr(PRESENTER, _held(trend_report, building, release))
        order: list[str] = []

        async def big() -> int:
            r = await tenant.client.get(
                "/v1/nps/trend", params={**TWO_YEARS, "group_by": "account"}
            )
            order.append("trend")
            return r.status_code

        pending = asyncio.create_task(big())
        assert await asyncio.to_thread(building.wait, 20)
        health = await tenant.client.get("/healthz")
        order.append("healthz")
        release.set()
        assert await pending == 200
        assert health.status_code == 200
        assert order == ["healthz", "trend"]  # the loop served /healthz during the build

    async def test_a_small_trend_is_built_on_the_loop(
        self, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await _seed(tenant)
        loop_thread = threading.get_ident()
        seen: list[int] = []

        def spy(*args: Any, **kwargs: Any) -> Any:
            seen.append(threading.get_ident())
            return trend_report(*args, **kwargs)

        monkeypatch.setattr(PRESENTER, spy)
        r = await tenant.client.get("/v1/nps/trend", params=TWO_YEARS)  # one line
        assert r.status_code == 200
        assert seen == [loop_thread]

    @pytest.mark.parametrize(
        ("path", "params"),
        [
            ("/v1/nps/trend", {**TWO_YEARS, "group_by": "account"}),
            ("/v1/nps/trend", TWO_YEARS),
            ("/v1/nps", {"from": TWO_YEARS["from"], "to": TWO_YEARS["to"], "group_by": "account"}),
        ],
    )
    async def test_the_body_built_off_the_loop_is_the_one_built_on_it(
        self, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, path: str, params: dict[str, str]
    ) -> None:
        await _seed(tenant)
        monkeypatch.setattr(bodies, "OFF_LOOP_ITEMS", 10**9)
        on_loop = await tenant.client.get(path, params=params)
        monkeypatch.setattr(bodies, "OFF_LOOP_ITEMS", 1)
        off_loop = await tenant.client.get(path, params=params)
        assert on_loop.status_code == off_loop.status_code == 200
        assert off_loop.content == on_loop.content
        assert off_loop.headers["content-type"] == on_loop.headers["content-type"]


class TestHealthzOutsideTheApp:
    async def test_answers_when_nothing_inside_the_middleware_can(
        self, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
    ) -> None:
        app: FastAPI = build_app(sessionmaker, engine)
        stuck = asyncio.Event()

        class StuckRouter(type(app.router)):  # type: ignore[misc]
            async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
                await stuck.wait()  # every request that reaches the app's routes waits here

        app.router.__class__ = StuckRouter
        async with client_for(app) as client:
            r = await asyncio.wait_for(client.get("/healthz"), 10)
            assert (r.status_code, r.json()) == (200, {"status": "ok"})
            assert r.headers["content-type"] == "application/json"
            assert r.headers["cache-control"] == "no-store"
            assert len(r.headers["x-request-id"]) == 16
            head = await asyncio.wait_for(client.head("/healthz"), 10)
            assert (head.status_code, head.content) == (200, b"")
            assert head.headers["content-length"] == r.headers["content-length"]
            stuck.set()
