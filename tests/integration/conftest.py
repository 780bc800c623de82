"""HTTP-level fixtures: the app on a connection whose outer transaction is rolled back per test."""

from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import session_scope
from app.models import Workspace
from tests.support.harness import MakeTenant, Tenant, build_app, new_tenant


@pytest_asyncio.fixture(loop_scope="session")
async def sessionmaker(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Every session of the test joins one outer transaction that is rolled back at the end."""
    async with engine.connect() as connection:
        outer = await connection.begin()
        yield async_sessionmaker(
            bind=connection,
            expire_on_commit=False,
            autoflush=False,
            join_transaction_mode="create_savepoint",
        )
        await outer.rollback()


@pytest_asyncio.fixture(loop_scope="session")
async def make_tenant(
    sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> AsyncIterator[MakeTenant]:
    app = build_app(sessionmaker, engine)
    made: list[Tenant] = []

    async def make(name: str) -> Tenant:
        made.append(await new_tenant(sessionmaker, app, name))
        return made[-1]

    yield make
    for tenant in made:
        await tenant.client.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def tenant(make_tenant: MakeTenant) -> Tenant:
    return await make_tenant("tenant-a")


@pytest_asyncio.fixture(loop_scope="session")
async def committed(engine: AsyncEngine) -> AsyncIterator[Tenant]:
    """A tenant whose requests really commit, for tests of concurrency; deleted afterwards."""
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    tenant = await new_tenant(sessionmaker, build_app(sessionmaker, engine), "committed")
    yield tenant
    await tenant.client.aclose()
    async with session_scope(sessionmaker) as session:
        await session.execute(delete(Workspace).where(Workspace.id == tenant.id))
