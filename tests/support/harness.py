"""The app under test and its tenants: a workspace plus an HTTP client authenticated in it."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from app.api.deps import utcnow
from app.config import Settings
from app.db import (
    SERVICE_ROLE,
    WORKSPACE_SETTING,
    get_engine,
    get_read_sessionmaker,
    get_sessionmaker,
    session_scope,
)
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


class ServiceSession(Session):
    """A session that acts as the service's role (app.db.SERVICE_ROLE), whatever role the
    test's connection logged in as: row-level security binds everything it runs."""


@event.listens_for(ServiceSession, "after_begin")
def _as_service(session: Session, _: Any, connection: Connection) -> None:
    connection.exec_driver_sql(f"SET LOCAL ROLE {SERVICE_ROLE}")
    session.info[_JOINED] = connection if isinstance(session.bind, Connection) else None


@event.listens_for(ServiceSession, "after_commit")
def _back_to_login(session: Session) -> None:
    # A session joined to the test's outer transaction committed a savepoint only: the role
    # (and the workspace it set) would stay for the rest of the test, the test's own builders
    # and checks included.
    joined: Connection | None = session.info.pop(_JOINED, None)
    if joined is not None:
        joined.exec_driver_sql("RESET ROLE")
        joined.exec_driver_sql(f"SELECT set_config('{WORKSPACE_SETTING}', '', false)")
        # What the data version's trigger remembers of its transaction (migration 0024).
        joined.exec_driver_sql("SELECT set_config('app.data_version_bumped', '', false)")


_JOINED = "tests.harness.joined"


def as_service(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """The same sessions, acting as the service's role (the app's, in every test)."""
    given = sessionmaker.kw.get("sync_session_class", Session)
    acting = (
        given
        if issubclass(given, ServiceSession)
        else type(f"Service{given.__name__}", (ServiceSession, given), {})
    )
    return async_sessionmaker(**{**sessionmaker.kw, "sync_session_class": acting})


# The settings of a test's app. The limit on look-ups of keys not yet known to work from one
# address is off: every test's tenants are new keys from the same address, and the counts of
# committed tests meet in rate_limit_windows, so a fast suite tripped it in unrelated tests
# (tests/integration/test_api_rate_limits.py sets it, and tests it).
TEST_SETTINGS: dict[str, Any] = {
    "database_url": "postgresql://unused@localhost/unused",
    "api_failed_auth_per_ip": 0,
}


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
    app = create_app(settings or Settings(**TEST_SETTINGS))
    sessionmaker = as_service(sessionmaker)
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
