"""The test database: NPS_TEST_DATABASE_URL's server, else an embedded PostgreSQL.

Each run works in a scratch database of its own, created on that server and dropped at the end,
with the schema built by the real Alembic migrations.
"""

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app import migrate
from app.config import async_database_url
from app.embedded import postgres_server, scratch_database


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A plain URL of a database on the server the tests use."""
    with postgres_server(os.environ.get("NPS_TEST_DATABASE_URL")) as url:
        yield url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """An async URL of the run's database, at the migrations' head."""
    async with scratch_database(server_url, "nps_test") as plain:
        url = async_database_url(plain)
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
    async with scratch_database(server_url, "nps_scratch") as plain:
        yield async_database_url(plain)
