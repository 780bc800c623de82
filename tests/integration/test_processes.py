"""The processes as they run in production: `nps worker` and `nps serve`, their names in
pg_stat_activity, their background worker, and a clean stop on SIGTERM."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app import migrate

DEADLINE_SECONDS = 60.0


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

    await _until(closed, f"the connections of {sorted(names)} to close")


async def _until(check: Callable[[], object], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while loop.time() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


@contextmanager
def _nps(database_url: str, *args: str, **env_vars: str) -> Iterator[subprocess.Popen[str]]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NPS_")},
        "NPS_DATABASE_URL": database_url,
        "NPS_WORKER_POLL_SECONDS": "0.2",
        **env_vars,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


async def _ready(port: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

        async def ready() -> bool:
            try:
                return (await client.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await _until(ready, "the service to be ready")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TestWorkerCommand:
    async def test_runs_the_periodic_upkeep_and_stops_on_sigterm(
        self, empty_database_url: str
    ) -> None:
        await asyncio.to_thread(migrate.upgrade, empty_database_url)
        with _nps(empty_database_url, "worker") as worker:

            async def upkeep_done() -> bool:
                rows = await _query(
                    empty_database_url, "SELECT task FROM jobs WHERE status = 'done'"
                )
                return {task for (task,) in rows} == {"idempotency.purge", "jobs.purge"}

            await _until(upkeep_done, "the periodic jobs to run")
            assert "nps-worker" in await _application_names(empty_database_url)

            assert await asyncio.to_thread(_stop, worker) == 0
        await _gone(empty_database_url, {"nps-worker"})


class TestServeCommand:
    async def test_serves_with_a_worker_in_process_and_stops_on_sigterm(
        self, empty_database_url: str
    ) -> None:
        port = _free_port()
        with _nps(
            empty_database_url, "serve", NPS_PORT=str(port), NPS_LOG_LEVEL="warning"
        ) as serve:
            await _ready(port)

            async def both_named() -> bool:
                names = await _application_names(empty_database_url)
                return {"nps-api", "nps-worker"} <= names

            await _until(both_named, "the API and the worker to connect")

            async def upkeep_ran() -> bool:
                rows = await _query(
                    empty_database_url, "SELECT count(*) FROM jobs WHERE status = 'done'"
                )
                return rows == [(2,)]

            await _until(upkeep_ran, "the in-process worker to run the periodic upkeep")

            assert await asyncio.to_thread(_stop, serve) == 0
        await _gone(empty_database_url, {"nps-api", "nps-worker"})

    async def test_worker_off_leaves_background_work_to_nps_worker(
        self, empty_database_url: str
    ) -> None:
        port = _free_port()
        with _nps(empty_database_url, "serve", NPS_PORT=str(port), NPS_WORKER="off") as serve:
            await _ready(port)
            await asyncio.sleep(1.0)  # time enough for a worker to have queued its upkeep

            assert "nps-api" in await _application_names(empty_database_url)
            assert "nps-worker" not in await _application_names(empty_database_url)
            assert await _query(empty_database_url, "SELECT count(*) FROM jobs") == [(0,)]
            await asyncio.to_thread(_stop, serve)
