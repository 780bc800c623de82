"""The app under test and its tenants: a workspace plus an HTTP client authenticated in it."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.api.deps import utcnow
from app.config import Settings
from app.db import get_engine, get_read_sessionmaker, get_sessionmaker, session_scope
from app.guard import Counters, counters_of
from app.main import create_app
from app.models import Scope
from app.services.keys import PREFIX_LENGTH, create_api_key, create_workspace
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

    @property
    def changed_by(self) -> str:
        """How a change made with the admin key is recorded (a revision's or a case's)."""
        return f"api_key:{self.admin_key[:PREFIX_LENGTH]}"


MakeTenant = Callable[[str], Awaitable[Tenant]]


def build_app(
    sessionmaker: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    *,
    settings: Settings | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """The production app with its database dependencies replaced (its lifespan never runs).

    The public calls' rate limits count in the test's own transaction, so they start afresh in
    every test; `clock` decides their windows."""
    app = create_app(settings or Settings(database_url="postgresql://unused@localhost/unused"))
    app.dependency_overrides[get_engine] = lambda: engine
    app.dependency_overrides[get_sessionmaker] = lambda: sessionmaker
    app.dependency_overrides[get_read_sessionmaker] = lambda: None
    counters = Counters(partial(session_scope, sessionmaker), clock)
    app.dependency_overrides[counters_of] = lambda scope: counters
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
