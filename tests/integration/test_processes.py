"""The processes as they run in production: `nps worker` and `nps serve`, their names in
pg_stat_activity, their background worker, and a clean stop on SIGTERM."""

import asyncio
import signal
import subprocess

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app import migrate
from tests.support.processes import eventually, free_port, started_nps, until_ready


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


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


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
                }

            await eventually(upkeep_done, "the periodic jobs to run", every=0.2)
            assert "nps-worker" in await _application_names(empty_database_url)

            assert await asyncio.to_thread(_stop, worker) == 0
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
                    empty_database_url, "SELECT count(*) FROM jobs WHERE status = 'done'"
                )
                return rows == [(5,)]  # deletions, events, idempotency, jobs and rate-limit purges

            await eventually(
                upkeep_ran, "the in-process worker to run the periodic upkeep", every=0.2
            )

            assert await asyncio.to_thread(_stop, serve) == 0
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
            assert await asyncio.to_thread(_stop, serve) == 0


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
        ) as serve:
            await until_ready(port)
            # The peer is 127.0.0.1, a trusted proxy by default: the forwarded address counts.
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

                async def call(address: str) -> httpx.Response:
                    # A connection each, so the kernel may hand them to either worker.
                    headers = {"X-Forwarded-For": address, "Connection": "close"}
                    return await client.get("/v1/public/invitation", headers=headers)

                answers = [await call("198.51.100.9") for _ in range(3)]
                other = await call("198.51.100.10")

            assert [r.status_code for r in answers] == [401, 401, 429]
            assert answers[2].headers["ratelimit"].startswith('"ip";r=0;t=')
            assert other.status_code == 401
            rows = await _query(
                empty_database_url, "SELECT key, hits FROM rate_limit_windows ORDER BY key"
            )
            assert rows == [("ip:198.51.100.10", 1), ("ip:198.51.100.9", 3)]
            await asyncio.to_thread(_stop, serve)
