"""HTTP-level fixtures: the app on a connection whose outer transaction is rolled back per test."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import get_engine, get_read_sessionmaker, get_sessionmaker
from app.main import create_app
from app.models import Scope, Workspace
from app.services.keys import create_api_key, create_workspace


@dataclass
class Tenant:
    """A workspace and an HTTP client authenticated as one of its keys."""

    id: uuid.UUID
    admin_key: str
    client: httpx.AsyncClient
    make_key: Callable[[Scope], Awaitable[str]]


MakeTenant = Callable[[str], Awaitable[Tenant]]


def build_app(sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> FastAPI:
    """The production app with its database dependencies replaced (its lifespan never runs)."""
    app = create_app(Settings(database_url="postgresql://unused@localhost/unused"))
    app.dependency_overrides[get_engine] = lambda: engine
    app.dependency_overrides[get_sessionmaker] = lambda: sessionmaker
    app.dependency_overrides[get_read_sessionmaker] = lambda: None
    return app


def client_for(app: FastAPI, key: str | None = None) -> httpx.AsyncClient:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    )


async def _tenant(
    sessionmaker: async_sessionmaker[AsyncSession], app: FastAPI, name: str
) -> Tenant:
    async with sessionmaker() as session, session.begin():
        workspace, admin = await create_workspace(session, name)

    async def make_key(scope: Scope) -> str:
        async with sessionmaker() as session, session.begin():
            _, raw = await create_api_key(session, workspace.id, scopes=[scope])
        return raw

    return Tenant(workspace.id, admin, client_for(app, admin), make_key)


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
        made.append(await _tenant(sessionmaker, app, name))
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
    tenant = await _tenant(sessionmaker, build_app(sessionmaker, engine), "committed")
    yield tenant
    await tenant.client.aclose()
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(Workspace).where(Workspace.id == tenant.id))
