"""Availability under pressure: reads take turns for their share of the connections, a request
that cannot be served soon is told the service is busy (not that the database is down)."""

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import (
    ReadSlots,
    create_engine,
    get_lookup_session,
    get_read_session,
    get_read_slots,
    get_session,
)
from app.main import create_app
from tests.support.frozen import FreezableRelay, relayed
from tests.support.harness import Tenant, build_app, client_for
from tests.support.problems import problem
from tests.support.processes import eventually, free_port

BUSY = "/problems/busy"
UNUSED_URL = "postgresql://unused@localhost/unused"


def _settings(**values: Any) -> Settings:
    return Settings(database_url=UNUSED_URL, **values)


def _slots(app: Any) -> ReadSlots:
    slots: ReadSlots = app.state.read_slots
    return slots


def _slotted(
    sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine, **values: Any
) -> tuple[Any, ReadSlots]:
    """The test app with these settings, and its read slots."""
    app = build_app(sessionmaker, engine, settings=_settings(**values))
    return app, _slots(app)


class TestReadSlots:
    def test_reads_get_a_few_turns_unless_configured(self) -> None:
        # Unset: one at a time, whatever the pool; the writes keep the other connections, and
        # heavy reports leave them the loop and the database's cores.
        assert _slots(create_app(_settings(pool_size=7))).slots == 1
        assert _slots(create_app(_settings(pool_size=1))).slots == 1
        assert _slots(create_app(_settings(pool_size=7, read_concurrency=3))).slots == 3
        assert _slots(create_app(_settings(pool_size=7, read_concurrency=7))).slots == 7

    async def test_a_read_without_a_turn_is_busy_and_writes_are_served(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
    ) -> None:
        app, slots = _slotted(sessionmaker, engine, read_concurrency=2, pool_timeout_seconds=0.2)
        async with client_for(app, tenant.admin_key) as client:
            async with slots.turn(), slots.turn():  # two slow reports in flight
                r = await client.get("/v1/nps")
                assert problem(r, 503) == {
                    "type": BUSY,
                    "title": "Service busy",
                    "status": 503,
                    "detail": "the service is at capacity (all 2 read slots are in use); "
                    "retry after a moment",
                }
                assert r.headers["retry-after"] == "2"
                write = await client.put("/v1/accounts/acme", json={"name": "Acme"})
                assert write.status_code == 201, write.text
            assert slots.in_use == 0  # the refused read gave back nothing it did not take
            assert (await client.get("/v1/nps")).status_code == 200
            assert slots.in_use == 0  # a served read gave its turn back

    async def test_a_read_waits_for_a_turn_that_comes_free_in_time(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
    ) -> None:
        app, slots = _slotted(sessionmaker, engine, read_concurrency=1, pool_timeout_seconds=5)
        async with client_for(app, tenant.admin_key) as client:
            freed = asyncio.Event()

            async def hold() -> None:
                async with slots.turn():
                    await freed.wait()

            holder = asyncio.create_task(hold())
            await asyncio.sleep(0)
            waiting = asyncio.create_task(client.get("/v1/nps"))
            await asyncio.sleep(0.1)
            assert not waiting.done()
            freed.set()
            await holder
            assert (await waiting).status_code == 200

    async def test_a_read_that_finds_the_queue_full_is_refused_at_once(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
    ) -> None:
        """NPS_READ_QUEUE: the read that would only wait to be refused is told at once, before
        any of its work; a write and a revalidation are not reads that wait, and are served."""
        app, slots = _slotted(
            sessionmaker, engine, read_concurrency=1, read_queue=1, pool_timeout_seconds=5
        )
        async with client_for(app, tenant.admin_key) as client:
            r = await client.get("/v1/nps", params={"to": "2026-07-01T00:00:00Z"})
            tag = r.headers["etag"]
            freed = asyncio.Event()

            async def hold() -> None:
                async with slots.turn():
                    await freed.wait()

            holder = asyncio.create_task(hold())
            await asyncio.sleep(0)
            waiting = asyncio.create_task(client.get("/v1/nps"))
            await eventually(lambda: slots.waiting == 1, "the first read to queue")
            loop = asyncio.get_running_loop()
            started = loop.time()
            refused = await client.get("/v1/nps/trend")
            assert loop.time() - started < 1  # not the 5 s a waiting read may wait
            assert problem(refused, 503)["detail"] == (
                "the service is at capacity (the read slot is in use and 1 read is waiting); "
                "retry after a moment"
            )
            assert refused.headers["retry-after"] == "2"
            revalidated = await client.get(
                "/v1/nps", params={"to": "2026-07-01T00:00:00Z"}, headers={"If-None-Match": tag}
            )
            assert revalidated.status_code == 304
            write = await client.put("/v1/accounts/acme", json={"name": "Acme"})
            assert write.status_code == 201, write.text
            freed.set()
            await holder
            assert (await waiting).status_code == 200
            assert (slots.in_use, slots.waiting) == (0, 0)

    async def test_a_lookup_by_key_takes_no_turn(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
    ) -> None:
        """A read of one resource by its key is served while every read turn is taken and no
        read may wait; the list beside it is refused at the door."""
        app, slots = _slotted(
            sessionmaker, engine, read_concurrency=1, read_queue=0, pool_timeout_seconds=5
        )
        async with client_for(app, tenant.admin_key) as client:
            write = await client.put("/v1/accounts/acme", json={"name": "Acme"})
            assert write.status_code == 201, write.text
            async with slots.turn():  # a slow report in flight
                assert slots.full
                one = await client.get("/v1/accounts/acme")
                assert one.status_code == 200, one.text
                assert one.json()["name"] == "Acme"
                assert (await client.get("/v1/stakeholders/nobody")).status_code == 404
                missing = await client.get("/v1/accounts/nobody")
                assert problem(missing, 404)["status"] == 404  # a lookup's errors are its own
                listed = await client.get("/v1/accounts")
                assert problem(listed, 503)["type"] == BUSY
                assert slots.in_use == 1  # the lookups took no turn
            assert slots.in_use == 0

    def test_the_queue_is_bounded_unless_configured(self) -> None:
        assert _slots(create_app(_settings())).queue == 8
        assert _slots(create_app(_settings(read_queue=0))).queue == 0


def _resolution_order(dependant: Dependant) -> list[Dependant]:
    """The dependencies in the order FastAPI runs them (each once, sub-dependencies first)."""
    seen: dict[Any, Dependant] = {}

    def walk(node: Dependant) -> None:
        for sub in node.dependencies:
            walk(sub)
            seen.setdefault(sub.call, sub)

    walk(dependant)
    return list(seen.values())


def test_every_read_takes_its_turn_before_it_holds_a_connection() -> None:
    """A read whose authentication (or any other user of the session) ran first would wait for
    its turn holding a connection."""
    app = create_app(_settings())
    reads = 0
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        order = _resolution_order(dependant)
        calls = [node.call for node in order]
        if get_read_session not in calls:
            continue
        reads += 1
        early = [
            getattr(node.call, "__name__", "?")
            for node in order[: calls.index(get_read_session)]
            if any(sub.call is get_session for sub in node.dependencies)
        ]
        assert early == [], f"{route.path}: {early} run before the read's turn"
    assert reads > 20


# The reads of one resource by its key (get_lookup_session): no report, list or export.
LOOKUPS = {
    "GET /v1/accounts/{account_id}",
    "GET /v1/stakeholders/{stakeholder_id}",
    "GET /v1/responses/{response_id}",
    "GET /v1/cases/{case_id}",
    "GET /v1/invitations/{invitation_id}",
    "GET /v1/surveys/{survey_id}",
    "GET /v1/imports/{import_id}",
}


def test_only_lookups_by_key_skip_the_read_turns() -> None:
    """A report, list or export moved to the lookup session would no longer take turns; a
    lookup keeps no read turn, and no route takes both sessions."""
    app = create_app(_settings())
    found: set[str] = set()
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        calls = {node.call for node in _resolution_order(dependant)}
        if get_lookup_session in calls:
            assert get_read_session not in calls, route.path
            found |= {f"{method} {route.path}" for method in route.methods or ()}
    assert found == LOOKUPS


@pytest_asyncio.fixture(loop_scope="session")
async def small_pool(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The API's own engine with two connections and a short wait for one."""
    engine = create_engine(
        database_url,
        _settings(pool_size=1, pool_timeout_seconds=0.2),
        application_name="nps-test",
    )
    yield engine
    await engine.dispose()


class TestPoolExhausted:
    async def test_no_free_connection_is_busy_not_an_outage(
        self, committed: Tenant, small_pool: AsyncEngine
    ) -> None:
        app = build_app(async_sessionmaker(small_pool, expire_on_commit=False), small_pool)
        async with (
            client_for(app, committed.admin_key) as client,
            small_pool.connect() as one,
            small_pool.connect() as two,
        ):
            for held in (one, two):
                await held.exec_driver_sql("SELECT 1")
            started = asyncio.get_running_loop().time()
            r = await client.put("/v1/accounts/acme", json={"name": "Acme"})
            waited = asyncio.get_running_loop().time() - started
        assert problem(r, 503)["type"] == BUSY
        assert r.headers["retry-after"] == "2"
        assert waited < 2  # NPS_POOL_TIMEOUT_SECONDS, not SQLAlchemy's 30 s


@pytest.mark.parametrize("value", ["0", "61"])
def test_pool_timeout_is_bounded(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPS_POOL_TIMEOUT_SECONDS", value)
    with pytest.raises(ValueError, match="pool_timeout_seconds"):
        Settings()


@pytest_asyncio.fixture(loop_scope="session")
async def frozen_pool(database_url: str) -> AsyncIterator[tuple[FreezableRelay, AsyncEngine]]:
    """The API's engine, with a short command timeout, on a database that can be frozen."""
    async with relayed(database_url) as (relay, url):
        engine = create_engine(
            url,
            _settings(pool_size=1, command_timeout_seconds=0.5),
            application_name="nps-test",
        )
        yield relay, engine
        relay.thaw()
        await engine.dispose()


class TestFrozenDatabase:
    async def test_readyz_answers_within_a_second(
        self,
        frozen_pool: tuple[FreezableRelay, AsyncEngine],
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        relay, engine = frozen_pool
        async with client_for(build_app(sessionmaker, engine)) as client:
            assert (await client.get("/readyz")).status_code == 200
            relay.freeze()
            loop = asyncio.get_running_loop()
            started = loop.time()
            r = await asyncio.wait_for(client.get("/readyz"), 10)
            waited = loop.time() - started
        assert problem(r, 503)["detail"] == "the database did not answer within 0.8 s"
        assert r.headers["retry-after"] == "5"
        assert waited < 1.0

    async def test_a_statement_gets_no_answer_is_503_within_the_command_timeout(
        self, committed: Tenant, frozen_pool: tuple[FreezableRelay, AsyncEngine]
    ) -> None:
        relay, engine = frozen_pool
        app = build_app(async_sessionmaker(engine, expire_on_commit=False), engine)
        async with client_for(app, committed.admin_key) as client:
            assert (await client.get("/v1/nps")).status_code == 200  # the pool holds a connection
            relay.freeze()
            loop = asyncio.get_running_loop()
            started = loop.time()
            r = await asyncio.wait_for(client.put("/v1/accounts/acme", json={"name": "A"}), 10)
            waited = loop.time() - started
        assert problem(r, 503) == {
            "type": "/problems/service-unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": "the database is unavailable; retry later",
        }
        assert waited < 3  # a statement or two, each bounded by NPS_COMMAND_TIMEOUT_SECONDS

    async def test_connections_over_tcp_have_keepalives(
        self, frozen_pool: tuple[FreezableRelay, AsyncEngine]
    ) -> None:
        _, engine = frozen_pool
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            sock = raw.driver_connection._transport.get_extra_info("socket")  # type: ignore[union-attr]
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 60_000


async def _broken_read_slots() -> ReadSlots:
    raise RuntimeError("a bug")


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> tuple[int, dict[str, str]]:
    """One request on a kept-alive connection: the answer's status and headers (body read)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in head[1:] if line)
    await reader.readexactly(int(headers["content-length"]))
    return int(head[0].split()[1]), headers


class TestServerErrors:
    async def test_a_500_says_it_closes_the_connection(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
    ) -> None:
        """uvicorn closes the connection after an error Starlette re-raises; without `Connection:
        close` the client's next request on it fails."""
        app = build_app(sessionmaker, engine)
        app.dependency_overrides[get_read_slots] = _broken_read_slots
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="critical")
        )
        serving = asyncio.create_task(server.serve())
        try:
            await eventually(lambda: server.started, "uvicorn to start")
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert (await _exchange(reader, writer, "/healthz"))[0] == 200  # kept alive
            status, headers = await _exchange(reader, writer, "/v1/nps")
            assert (status, headers.get("connection")) == (500, "close")
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, as announced
            writer.close()
        finally:
            server.should_exit = True
            await serving
