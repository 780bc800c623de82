"""Faults of the database under a real `nps serve`, on a private PostgreSQL of the test's own:
stopped fast in the middle of a load of batches and single answers (every acknowledged answer
stored once, none twice, once the clients' retries are done), and frozen (503 within the
configured timeouts, /readyz 503 at once, recovery after it thaws). Each test is bounded and
kills its server whatever happens."""

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from app.config import async_database_url
from app.embedded import create_database, with_database
from tests.support.api import Answer
from tests.support.clock import utc
from tests.support.private_pg import PrivatePostgres, private_postgres
from tests.support.processes import eventually, free_port, started_nps, until_ready

KEY = "nps_fault-0123456789abcdefghijklmn"
RETRIED = {409, 503}  # a concurrent duplicate in progress; the database away or busy
DEADLINE_SECONDS = 45.0


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def served(pg: PrivatePostgres) -> AsyncIterator[tuple[PrivatePostgres, str, int]]:
    """`nps serve` on a new database of the private server, with low timeouts."""
    name = await create_database(pg.url, "nps_fault")
    url = async_database_url(with_database(pg.url, name))
    port = free_port()
    with started_nps(
        url,
        "serve",
        NPS_PORT=str(port),
        NPS_WORKER="off",
        NPS_LOG_LEVEL="warning",
        NPS_BOOTSTRAP_API_KEY=KEY,
        NPS_COMMAND_TIMEOUT_SECONDS="3",
        NPS_POOL_TIMEOUT_SECONDS="1",
        NPS_STATEMENT_TIMEOUT_MS="2000",
    ):
        await until_ready(port)
        yield pg, url, port


def _client(port: int, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=timeout,
    )


async def _stored_comments(url: str) -> dict[str, int]:
    import asyncpg

    from app.embedded import plain_dsn

    conn = await asyncpg.connect(plain_dsn(url))
    try:
        rows = await conn.fetch("SELECT comment, count(*) AS n FROM responses GROUP BY comment")
    finally:
        await conn.close()
    return {row["comment"]: row["n"] for row in rows}


def _item(n: int) -> dict[str, Any]:
    answer = Answer(f"p-{n % 40}", f"acct-{n % 7}", n % 11, utc(2026, 1, 1))
    return {**answer.item(), "comment": f"item-{n}"}


class TestDatabaseStoppedMidLoad:
    async def test_every_acknowledged_write_is_stored_once(
        self, served: tuple[PrivatePostgres, str, int]
    ) -> None:
        pg, url, port = served
        numbers = itertools.count()
        acknowledged: list[str] = []
        outcomes: dict[str, int] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_SECONDS
        stopping = asyncio.Event()

        async def until_acknowledged(client: httpx.AsyncClient, path: str, body: Any) -> int:
            key = str(uuid.uuid4())  # the same key and body on every retry
            while loop.time() < deadline:
                try:
                    r = await client.post(path, json=body, headers={"Idempotency-Key": key})
                except httpx.TransportError:
                    outcomes["transport"] = outcomes.get("transport", 0) + 1
                else:
                    outcomes[str(r.status_code)] = outcomes.get(str(r.status_code), 0) + 1
                    if r.status_code not in RETRIED:
                        return r.status_code
                await asyncio.sleep(0.2)
            raise AssertionError(f"{path} never acknowledged: {outcomes}")

        async def batches(client: httpx.AsyncClient) -> None:
            while not stopping.is_set() or len(acknowledged) < 600:
                items = [_item(next(numbers)) for _ in range(50)]
                status = await until_acknowledged(
                    client, "/v1/responses/batch", {"responses": items}
                )
                assert status == 200, status
                acknowledged.extend(item["comment"] for item in items)
                if len(acknowledged) > 3000:
                    return

        async def singles(client: httpx.AsyncClient) -> None:
            while not stopping.is_set() or len(acknowledged) < 600:
                item = _item(next(numbers))
                status = await until_acknowledged(client, "/v1/responses", item)
                assert status == 201, status
                acknowledged.append(item["comment"])
                if len(acknowledged) > 3000:
                    return

        async def fault() -> None:
            await eventually(lambda: len(acknowledged) >= 200, "some writes", seconds=30)
            await asyncio.to_thread(pg.stop_fast)  # mid-batch: transactions are cut off
            stopping.set()
            await asyncio.sleep(1.5)  # clients meet the outage and retry
            await asyncio.to_thread(pg.start)

        async with _client(port, timeout=15) as client:
            await asyncio.gather(
                fault(), *(batches(client) for _ in range(3)), *(singles(client) for _ in range(3))
            )
        stored = await _stored_comments(url)
        assert outcomes.get("503", 0) + outcomes.get("transport", 0) > 0, outcomes  # an outage
        assert [c for c, n in stored.items() if n > 1] == []  # nothing stored twice
        assert [c for c in acknowledged if c not in stored] == []  # nothing acknowledged lost
        assert len(set(acknowledged)) == len(acknowledged)


class TestDatabaseFrozen:
    async def test_requests_get_503_within_the_timeouts_and_the_service_recovers(
        self, served: tuple[PrivatePostgres, str, int]
    ) -> None:
        pg, _, port = served
        # A bound on every call of the frozen phase: command (3 s) + pool (1 s) timeouts, with
        # room for a shared machine; a request that hangs (as it did for 60 s) fails it.
        async with _client(port, timeout=12) as client:
            r = await client.put("/v1/accounts/before", json={"name": "Before"})
            assert r.status_code == 201, r.text
            pg.freeze()
            try:
                ready, *writes = await asyncio.gather(
                    client.get("/readyz"),
                    *(client.put(f"/v1/accounts/a{i}", json={"name": "A"}) for i in range(4)),
                    client.get("/v1/accounts"),
                )
                assert ready.status_code == 503
                assert ready.headers["content-type"] == "application/problem+json"
                assert [w.status_code for w in writes] == [503] * 5, [w.text for w in writes]
                assert all("retry-after" in w.headers for w in writes)
                again = await client.get("/readyz")  # still frozen: still answered
                assert again.status_code == 503
            finally:
                pg.thaw()

            async def recovered() -> bool:
                try:
                    ready = await client.get("/readyz")
                    write = await client.put("/v1/accounts/after", json={"name": "After"})
                except httpx.TransportError:
                    return False
                return ready.status_code == 200 and write.status_code in (200, 201)

            await eventually(recovered, "the service to recover", seconds=30, every=0.5)
            assert (await client.get("/v1/accounts/before")).status_code == 200
