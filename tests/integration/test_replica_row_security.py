"""Reads on a replica (NPS_READ_DATABASE_URL) act in the caller's workspace too: the replica's
transaction names the workspace that authentication found on the primary (app.db
get_read_session), so row-level security binds its reads as it binds the primary's.

The "replica" here is a second engine on the same database, logged in as the service's role:
what matters is that its sessions are not the primary's."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest_asyncio
from sqlalchemy import delete, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.db import WORKSPACE_SETTING, create_sessionmaker, get_read_sessionmaker, session_scope
from app.models import Workspace
from tests.support.api import Answer, post_answers
from tests.support.harness import Tenant, as_service, build_app, client_for, new_tenant

WHEN = datetime.fromisoformat("2026-02-01T12:00:00+00:00")


@pytest_asyncio.fixture(loop_scope="session")
async def replica(engine: AsyncEngine) -> AsyncIterator[tuple[AsyncEngine, list[Any]]]:
    """A second engine standing in for the replica, and the parameters of each statement that
    named a workspace on it."""
    second = create_async_engine(engine.url, pool_size=2)
    named: list[Any] = []

    def watch(_: Any, __: Any, statement: str, parameters: Any, *___: Any) -> None:
        if WORKSPACE_SETTING in statement:
            named.append(parameters)

    event.listen(second.sync_engine, "before_cursor_execute", watch)
    yield second, named
    await second.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def two(engine: AsyncEngine) -> AsyncIterator[tuple[Tenant, Tenant]]:
    owner = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    app = build_app(owner, engine)
    made = [await new_tenant(owner, app, f"replica-{uuid.uuid4().hex[:8]}") for _ in range(2)]
    await post_answers(made[0].client, [Answer("p1@a.example", "a", 10, WHEN)])
    await post_answers(
        made[1].client,
        [Answer("p1@b.example", "b", 0, WHEN), Answer("p2@b.example", "b", 1, WHEN)],
    )
    yield made[0], made[1]
    for tenant in made:
        await tenant.client.aclose()
    async with session_scope(owner) as session:
        await session.execute(delete(Workspace).where(Workspace.id.in_([t.id for t in made])))


async def test_a_read_on_the_replica_sees_the_caller_s_workspace_only(
    engine: AsyncEngine,
    replica: tuple[AsyncEngine, list[Any]],
    two: tuple[Tenant, Tenant],
) -> None:
    second, named = replica
    owner = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    app = build_app(owner, engine)
    replica_sessions: async_sessionmaker[AsyncSession] = as_service(create_sessionmaker(second))
    app.dependency_overrides[get_read_sessionmaker] = lambda: replica_sessions
    a, b = two
    async with client_for(app, a.admin_key) as as_a, client_for(app, b.admin_key) as as_b:
        seen_by_a = (await as_a.get("/v1/nps", params={"from": "2026-01-01T00:00:00Z"})).json()
        seen_by_b = (await as_b.get("/v1/nps", params={"from": "2026-01-01T00:00:00Z"})).json()

    assert (seen_by_a["score"]["n"], seen_by_a["score"]["nps"]) == (1, 100)
    assert (seen_by_b["score"]["n"], seen_by_b["score"]["nps"]) == (2, -100)
    # Both reads ran on the replica, each naming its caller's workspace there.
    assert [(str(a.id),), (str(b.id),)] == [tuple(p) for p in named]
