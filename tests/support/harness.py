"""The app under test and its tenants: a workspace plus an HTTP client authenticated in it."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import get_engine, get_read_sessionmaker, get_sessionmaker, session_scope
from app.main import create_app
from app.models import Scope
from app.services.keys import create_api_key, create_workspace
from tests.support.factories import Rows


@dataclass
class Tenant:
    """A workspace, an HTTP client authenticated as one of its keys, and builders that write
    the workspace's rows straight to the database (for data a test does not test)."""

    id: uuid.UUID
    admin_key: str
    client: httpx.AsyncClient
    make_key: Callable[[Scope], Awaitable[str]]
    db: Rows


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


async def new_tenant(
    sessionmaker: async_sessionmaker[AsyncSession], app: FastAPI, name: str
) -> Tenant:
    """A new workspace with an admin key, and a client of `app` using that key."""
    async with session_scope(sessionmaker) as session:
        workspace, admin = await create_workspace(session, name)

    async def make_key(scope: Scope) -> str:
        async with session_scope(sessionmaker) as session:
            _, raw = await create_api_key(session, workspace.id, scopes=[scope])
        return raw

    return Tenant(
        workspace.id, admin, client_for(app, admin), make_key, Rows(sessionmaker, workspace.id)
    )
