"""The test database: NPS_TEST_DATABASE_URL's server, else an embedded PostgreSQL.

Each run works in a scratch database of its own, created on that server and dropped at the end,
with the schema built by the real Alembic migrations.
"""

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app import migrate
from app.config import async_database_url
from app.embedded import embedded_postgres


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _asyncpg_dsn(url: str) -> str:
    return async_database_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A plain URL of a database on the server the tests use."""
    configured = os.environ.get("NPS_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with (
        tempfile.TemporaryDirectory(prefix="nps-test-") as tmp,
        embedded_postgres(Path(tmp) / "pg", database="postgres", delete=True) as url,
    ):
        yield url


@asynccontextmanager
async def scratch_database(server_url: str, prefix: str) -> AsyncIterator[str]:
    """A new empty database on the server for the duration of the block (async URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield async_database_url(_with_database(server_url, name))
    finally:
        admin = await asyncpg.connect(_asyncpg_dsn(server_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """An async URL of the run's database, at the migrations' head."""
    async with scratch_database(server_url, "nps_test") as url:
        await asyncio.to_thread(migrate.upgrade, url)  # Alembic's env runs its own event loop
        yield url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, pool_size=10, max_overflow=60)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def empty_database_url(server_url: str) -> AsyncIterator[str]:
    """An async URL of a database of its own with no schema, dropped after the test."""
    async with scratch_database(server_url, "nps_scratch") as url:
        yield url
