"""The service as deployed in production, started by the benchmark, and its database.

A scratch database on NPS_BENCH_DATABASE_URL's server or a throwaway embedded one (app.embedded,
shared with the tests); `nps serve` (and the floor server, bench.floor_app) in a session of its
own with only the `NPS_` settings given here, a readiness wait on `/readyz`, and a graceful stop
(then SIGKILL to its process group). Their memory and process tree are bench.memory.
"""

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app.config import Settings
from app.db import SERVICE_ROLE
from app.embedded import (
    as_user,
    create_database,
    drop_database,
    plain_dsn,
    postgres_server,
    service_login,
    with_database,
)
from bench import BenchError, floor_app, say

BIN = Path(sys.executable).parent
READY_TIMEOUT = 90.0
PUBLIC_REQUESTS_PER_IP = 1_000_000_000


# The database


async def _data_directory(server_url: str) -> str:
    conn = await asyncpg.connect(plain_dsn(server_url))
    try:
        directory: str = await conn.fetchval("SHOW data_directory")
    finally:
        await conn.close()
    return directory


@contextmanager
def database_server(keep: bool) -> Iterator[tuple[str, str]]:
    """A plain URL of a server's maintenance database, and which kind of server it is:
    NPS_BENCH_DATABASE_URL's ("server"), else a throwaway embedded one (kept with `keep`)."""
    configured = os.environ.get("NPS_BENCH_DATABASE_URL")
    with postgres_server(configured, keep=keep) as url:
        kept = asyncio.run(_data_directory(url)) if keep and not configured else None
        try:
            yield url, "server" if configured else "embedded"
        finally:
            if kept:
                say(f"kept the embedded PostgreSQL data directory {kept}")


@contextmanager
def scratch_database(server_url: str, keep: bool) -> Iterator[str]:
    """A new database `nps_bench_<hex>` on the server for the run (kept with `keep`); its plain
    URL."""
    name = asyncio.run(create_database(server_url, "nps_bench"))
    try:
        yield with_database(server_url, name)
    finally:
        if keep:
            say(f"kept the database {name}")
        else:
            asyncio.run(drop_database(server_url, name))


# The service


RUN_PEPPER = secrets.token_urlsafe(48)


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    """The caller's environment without NPS_ settings, so the service runs as configured here:
    production, and no in-process background worker (in production the worker is a process of
    its own, so the web processes are measured without it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPS_")}
    env |= {
        "NPS_ENV": "production",
        "NPS_DATABASE_URL": database_url,
        "NPS_WORKER": "off",
        "NPS_KEY_PEPPER": RUN_PEPPER,  # required in production; the run's processes share it
    }
    return env | extra


def as_service_role(database_url: str, env: dict[str, str]) -> dict[str, str]:
    """`env` connecting as the service's role, which row-level security binds, as in production,
    and migrating as the owner (running_service lets the role log in first)."""
    return env | {
        "NPS_DATABASE_URL": as_user(database_url, SERVICE_ROLE),
        "NPS_MIGRATION_DATABASE_URL": database_url,
    }


def nps(arguments: Sequence[str], env: dict[str, str]) -> str:
    """Run an `nps` command to completion; its stdout."""
    done = subprocess.run(
        [str(BIN / "nps"), *arguments], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"`nps {' '.join(arguments)}` failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_service(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (graceful), then SIGKILL to the process group this script started, if need be."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if _group_alive(process.pid):  # a worker that outlived its supervisor
        os.killpg(process.pid, signal.SIGTERM)
        time.sleep(1)
        if _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def _serving(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[Service]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        # A session of its own, so Ctrl-C reaches this script, which stops the server itself.
        process = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield Service(process, f"http://127.0.0.1:{port}", log)
    finally:
        stop_service(process)


@contextmanager
def running_service(database_url: str, workers: int, log: Path) -> Iterator[Service]:
    port = free_port()
    env = service_env(
        database_url,
        NPS_HOST="127.0.0.1",
        NPS_PORT=str(port),
        NPS_WORKERS=str(workers),
        NPS_LOG_LEVEL="warning",
        # Every client of the run is 127.0.0.1: the public calls' per-IP quota (meant for one
        # person's browser) is raised out of reach, so each request is still counted, as in
        # production, but none is refused.
        NPS_PUBLIC_RATE_LIMIT_PER_IP=str(PUBLIC_REQUESTS_PER_IP),
        # Likewise the API's quotas per key and per address: the revalidation phase alone polls
        # about 2,800 times a second with one key, past the default 60,000 a minute, and the
        # collect phase after it was refused 8,000 of its 10,000 invitations.
        NPS_API_RATE_LIMIT_PER_KEY=str(PUBLIC_REQUESTS_PER_IP),
        NPS_API_RATE_LIMIT_PER_IP=str(PUBLIC_REQUESTS_PER_IP),
        # The webhook phase registers a receiver on 127.0.0.1 (bench.webhooks).
        NPS_WEBHOOKS_ALLOW_PRIVATE="true",
        # The query phases repeat each query within a minute: with the report cache every call
        # after the first was the kept body (a few ms at 1M answers), not the computation they
        # are there to time. Revalidation, what the cache and the tags are for, is its own
        # phase.
        NPS_REPORT_CACHE_ENTRIES="0",
    )
    # The migrations made the service's role; the server's superuser lets it log in.
    asyncio.run(service_login(database_url))
    env = as_service_role(database_url, env)
    with _serving([str(BIN / "nps"), "serve"], env, port, log) as service:
        yield service


@contextmanager
def running_floor(database_url: str, workers: int, log: Path) -> Iterator[Service]:
    """bench.floor_app under uvicorn as `nps serve` runs the service: the same worker count,
    HTTP and loop implementations, log level and connection pool size per worker."""
    port = free_port()
    env = service_env(database_url)
    env |= {
        floor_app.DSN: plain_dsn(database_url),
        floor_app.POOL: str(Settings.model_fields["pool_size"].default),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.floor_app:create_app",
        "--factory",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--workers={workers}",
        "--log-level=warning",
        "--proxy-headers",
    ]
    with _serving(command, env, port, log) as floor:
        yield floor


def _log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def log_errors(log: Path) -> dict[str, Any]:
    """How many lines the service logged, and the first of those that report an error."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return {"lines": 0}
    errors = [line for line in lines if "Traceback" in line or "ERROR" in line]
    return {"lines": len(lines), "error_lines": len(errors), "first": errors[:10]}


async def wait_ready(service: Service) -> float:
    began = time.perf_counter()
    async with httpx.AsyncClient(base_url=service.base_url, timeout=5) as client:
        while time.perf_counter() - began < READY_TIMEOUT:
            if (code := service.process.poll()) is not None:
                raise BenchError(f"the service exited with {code}:\n{_log_tail(service.log)}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise BenchError(
        f"the service was not ready in {READY_TIMEOUT:.0f} s:\n{_log_tail(service.log)}"
    )
