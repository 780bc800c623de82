"""The `nps` command in a process of its own, and waiting for what it does."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import asyncpg
import httpx

from app.db import SERVICE_ROLE
from app.embedded import as_user, plain_dsn

NPS = (sys.executable, "-m", "app.cli")


def nps_env(database_url: str, **env_vars: str) -> dict[str, str]:
    """This environment without its own NPS_ settings, plus `env_vars`, on `database_url` (the
    tables' owner's) as production runs: connected as the service's role, which row-level
    security binds, and migrating as the owner. The role, made by the migrations, may then log
    in (a superuser's ALTER ROLE, run in a thread: callers are often inside an event loop)."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, _let_the_service_log_in(database_url)).result()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("NPS_")}
    return {
        **inherited,
        "NPS_DATABASE_URL": as_user(database_url, SERVICE_ROLE),
        "NPS_MIGRATION_DATABASE_URL": database_url,
        **env_vars,
    }


async def _let_the_service_log_in(database_url: str) -> None:
    """The service's role may log in: made so when missing (as an operator may before the
    first `nps serve` migrates; the migrations keep it), else granted LOGIN."""
    try:
        conn = await asyncpg.connect(plain_dsn(database_url), timeout=5)
    except (OSError, asyncpg.PostgresError):
        return  # no server there: what the command makes of that is the test's to see
    try:
        can = await conn.fetchval(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", SERVICE_ROLE
        )
        if can is None:
            try:
                await conn.execute(f"CREATE ROLE {SERVICE_ROLE} LOGIN")
            except asyncpg.DuplicateObjectError:  # made meanwhile by another test's migration
                await conn.execute(f"ALTER ROLE {SERVICE_ROLE} LOGIN")
        elif not can:
            await conn.execute(f"ALTER ROLE {SERVICE_ROLE} LOGIN")
    finally:
        await conn.close()


def run_nps(database_url: str, *args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    """`nps ARGS` to its end (at most a minute), its output captured."""
    return subprocess.run(
        [*NPS, *args],
        env=nps_env(database_url, **env_vars),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextmanager
def started_nps(database_url: str, *args: str, **env_vars: str) -> Iterator[subprocess.Popen[str]]:
    """`nps ARGS` running while the block runs; killed afterwards if it is still up."""
    process = subprocess.Popen(
        [*NPS, *args],
        env=nps_env(database_url, **env_vars),
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


def stop(process: subprocess.Popen[str]) -> int:
    """SIGTERM, as an orchestrator stops a service; its exit status (at most 30 s later)."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


async def eventually(
    check: Callable[[], object], what: str, *, seconds: float = 60.0, every: float = 0.02
) -> None:
    """Wait until `check()` (a function or a coroutine function) is true, looking `every` so
    often; fail after `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(every)
    raise AssertionError(f"gave up waiting for {what}")


def free_port() -> int:
    """A loopback TCP port nothing listens on (a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def until_ready(port: int) -> None:
    """Wait until the service on `port` answers /readyz with 200."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

        async def ready() -> bool:
            try:
                return (await client.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, "the service to be ready", every=0.2)
