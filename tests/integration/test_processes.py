"""The processes as they run in production: `nps worker` and `nps serve`, their names in
pg_stat_activity, their background worker, and a clean stop on SIGTERM."""

import asyncio
import os
import signal

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app import migrate
from tests.support.processes import eventually, free_port, started_nps, stop, until_ready


async def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


async def _application_names(url: str) -> set[str]:
    rows = await _query(
        url,
        "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()",
    )
    return {str(name) for (name,) in rows}


async def _gone(url: str, names: set[str]) -> None:
    """The processes' connections close with them (a backend lingers a moment after)."""

    async def closed() -> bool:
        return not names & await _application_names(url)

    await eventually(closed, f"the connections of {sorted(names)} to close", every=0.2)


class TestWorkerCommand:
    async def test_runs_the_periodic_upkeep_and_stops_on_sigterm(
        self, empty_database_url: str
    ) -> None:
        await asyncio.to_thread(migrate.upgrade, empty_database_url)
        with started_nps(empty_database_url, "worker", NPS_WORKER_POLL_SECONDS="0.2") as worker:

            async def upkeep_done() -> bool:
                rows = await _query(
                    empty_database_url, "SELECT task FROM jobs WHERE status = 'done'"
                )
                return {task for (task,) in rows} == {
                    "deletions.purge",
                    "events.purge",
                    "idempotency.purge",
                    "jobs.purge",
                    "rate_limits.purge",
                    "statistics.refresh",
                    "tallies.fold",
                }

            await eventually(upkeep_done, "the periodic jobs to run", every=0.2)
            assert "nps-worker" in await _application_names(empty_database_url)

            assert await asyncio.to_thread(stop, worker) == 0
        await _gone(empty_database_url, {"nps-worker"})


class TestServeCommand:
    async def test_serves_with_a_worker_in_process_and_stops_on_sigterm(
        self, empty_database_url: str
    ) -> None:
        port = free_port()
        with started_nps(
            empty_database_url,
            "serve",
            NPS_PORT=str(port),
            NPS_LOG_LEVEL="warning",
            NPS_WORKER_POLL_SECONDS="0.2",
        ) as serve:
            await until_ready(port)

            async def both_named() -> bool:
                names = await _application_names(empty_database_url)
                return {"nps-api", "nps-worker"} <= names

            await eventually(both_named, "the API and the worker to connect", every=0.2)

            async def upkeep_ran() -> bool:
                rows = await _query(
                    empty_database_url, "SELECT DISTINCT task FROM jobs WHERE status = 'done'"
                )
                # The purges (deletions, events, idempotency, jobs, rate limits) and the
                # statistics' look and the tallies' fold, which may have run more than once.
                return len(rows) == 7

            await eventually(
                upkeep_ran, "the in-process worker to run the periodic upkeep", every=0.2
            )

            assert await asyncio.to_thread(stop, serve) == 0
        await _gone(empty_database_url, {"nps-api", "nps-worker"})

    async def test_worker_off_leaves_background_work_to_nps_worker(
        self, empty_database_url: str
    ) -> None:
        port = free_port()
        with started_nps(
            empty_database_url, "serve", NPS_PORT=str(port), NPS_WORKER="off"
        ) as serve:
            await until_ready(port)
            await asyncio.sleep(1.0)  # time enough for a worker to have queued its upkeep

            assert "nps-api" in await _application_names(empty_database_url)
            assert "nps-worker" not in await _application_names(empty_database_url)
            assert await _query(empty_database_url, "SELECT count(*) FROM jobs") == [(0,)]
            # Exec'ed into uvicorn, which re-raises SIGTERM after draining: still status 0.
            assert await asyncio.to_thread(stop, serve) == 0


class TestServedPublicCalls:
    async def test_uvicorn_workers_share_the_counts_of_the_forwarded_client(
        self, empty_database_url: str
    ) -> None:
        port = free_port()
        with started_nps(
            empty_database_url,
            "serve",
            NPS_PORT=str(port),
            NPS_WORKER="off",
            NPS_WORKERS="2",
            NPS_LOG_LEVEL="warning",
            NPS_PUBLIC_RATE_LIMIT_PER_IP="2",
            # Each worker shares what it counted at every call (app.local_limits).
            NPS_RATE_LIMIT_FLUSH_SECONDS="0.001",
        ) as serve:
            await until_ready(port)
            # The peer is 127.0.0.1, a trusted proxy by default: the forwarded address counts.
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

                async def call(address: str) -> httpx.Response:
                    # A connection each, so the kernel may hand them to either worker.
                    headers = {"X-Forwarded-For": address, "Connection": "close"}
                    answer = await client.get("/v1/public/invitation", headers=headers)
                    await asyncio.sleep(0.01)
                    return answer

                answers = [await call("198.51.100.9") for _ in range(4)]
                other = await call("198.51.100.10")

            # A worker decides with the totals it learnt at its last call plus its own count
            # (a worker's first call knows only itself): with two workers and a quota of 2,
            # one of the first four calls is refused wherever they went.
            statuses = [r.status_code for r in answers]
            assert statuses[:2] == [401, 401], statuses
            assert 429 in statuses, statuses
            refused = answers[statuses.index(429)]
            assert refused.headers["ratelimit"].startswith('"ip";r=0;t=')
            assert other.status_code == 401
            rows = await _query(empty_database_url, "SELECT key, hits FROM rate_limit_windows")
            shared: dict[object, object] = {row[0]: row[1] for row in rows}
            assert shared["ip:198.51.100.10"] == 1
            # Every call that was let through was shared with the other worker; the refused
            # ones go with a worker's next flush (the last call's, if it went there).
            assert statuses.count(401) <= int(str(shared["ip:198.51.100.9"])) <= 4
            await asyncio.to_thread(stop, serve)


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == parent:
                found.append(int(entry))
    return sorted(found)


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def _tcp_inodes(port: int, state: str) -> set[int]:
    """Inodes of this machine's TCP sockets on local `port` in `state` (0A listen, 01 open)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                    inodes.add(int(fields[9]))
    return inodes


class TestWebProcesses:
    """Several web processes, each on a listening socket of its own (SO_REUSEPORT), so the
    kernel spreads connections across them; one that dies is replaced; SIGTERM drains them all
    and exits 0."""

    async def test_each_process_listens_on_its_own_socket_and_all_take_connections(
        self, empty_database_url: str
    ) -> None:
        port = free_port()
        with started_nps(
            empty_database_url,
            "serve",
            NPS_PORT=str(port),
            NPS_WORKER="off",
            NPS_WORKERS="2",
            NPS_LOG_LEVEL="warning",
        ) as serve:
            await until_ready(port)
            web = _children(serve.pid)
            assert len(web) == 2
            listening = [_socket_inodes(pid) & _tcp_inodes(port, "0A") for pid in web]
            assert all(len(own) == 1 for own in listening)
            assert listening[0] != listening[1]

            # 32 keep-alive clients connecting at once: each process gets some of them.
            clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") for _ in range(32)]
            try:
                replies = await asyncio.gather(*(c.get("/healthz") for c in clients))
                assert {r.status_code for r in replies} == {200}
                open_ = _tcp_inodes(port, "01")
                assert all(_socket_inodes(pid) & open_ for pid in web)
            finally:
                await asyncio.gather(*(c.aclose() for c in clients))

            os.kill(web[0], signal.SIGKILL)

            async def replaced() -> bool:
                now = _children(serve.pid)
                return len(now) == 2 and web[0] not in now

            await eventually(replaced, "a new web process in place of the killed one")
            await until_ready(port)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                assert (await client.get("/healthz")).status_code == 200
            survivors = _children(serve.pid)
            assert stop(serve) == 0
            assert not set(survivors) & {int(e) for e in os.listdir("/proc") if e.isdigit()}
