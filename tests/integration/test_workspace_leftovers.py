"""Deleting a workspace deletes its events, jobs, idempotency records (migration 0017), data
versions (0019) and tallies with their deltas (0023), which hold no foreign key to workspaces: a
trigger on workspaces removes them, also when row-level security binds the role that deletes, and
leaves every other workspace's rows alone."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest_asyncio
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import in_workspace, session_scope
from app.models import (
    WORKSPACE_LEFTOVERS,
    AnswerTally,
    DataVersion,
    Event,
    IdempotencyRecord,
    Job,
    TallyDelta,
    Workspace,
)
from app.services import tallies
from tests.support.api import Answer
from tests.support.harness import Tenant, as_service, build_app, new_tenant

WHEN = datetime.fromisoformat("2026-02-01T12:00:00+00:00")
MODELS: dict[str, Any] = {
    "events": Event,
    "jobs": Job,
    "idempotency_keys": IdempotencyRecord,
    "data_versions": DataVersion,
    "tally_deltas": TallyDelta,
    "answer_tallies": AnswerTally,
}


@pytest_asyncio.fixture(loop_scope="session")
async def owner(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that really commit, as the tables' owner (row-level security does not bind)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@pytest_asyncio.fixture(loop_scope="session")
async def two(
    owner: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> AsyncIterator[tuple[Tenant, Tenant]]:
    app = build_app(owner, engine)
    made = [await new_tenant(owner, app, f"leftovers-{uuid.uuid4().hex[:8]}") for _ in range(2)]
    for tenant in made:
        answer = Answer("p1@acme.example", "acme", 9, WHEN).item()
        reply = await tenant.client.post(
            "/v1/responses/batch",
            json={"responses": [answer]},
            headers={"Idempotency-Key": "once"},
        )
        assert reply.status_code == 200, reply.text
        # Tallies of that answer's buckets, and the deltas of a later one.
        async with session_scope(owner) as session:
            assert await tallies.fold(session, tenant.id) > 0
        later = Answer("p1@acme.example", "acme", 3, WHEN + timedelta(days=40)).item()
        reply = await tenant.client.post("/v1/responses", json=later)
        assert reply.status_code == 201, reply.text
    yield made[0], made[1]
    for tenant in made:
        await tenant.client.aclose()
    async with session_scope(owner) as session:
        await session.execute(delete(Workspace).where(Workspace.id.in_([t.id for t in made])))


async def _counts(
    owner: async_sessionmaker[AsyncSession], workspace_id: uuid.UUID
) -> dict[str, int]:
    async with session_scope(owner) as session:
        return {
            table: await session.scalar(
                select(func.count()).select_from(model).where(model.workspace_id == workspace_id)
            )
            or 0
            for table, model in MODELS.items()
        }


def test_the_trigger_covers_the_tables_named_in_the_models() -> None:
    assert set(MODELS) == set(WORKSPACE_LEFTOVERS)


class TestDeletingAWorkspace:
    async def test_takes_its_events_jobs_and_idempotency_records(
        self, owner: async_sessionmaker[AsyncSession], two: tuple[Tenant, Tenant]
    ) -> None:
        gone, kept = two
        assert all((await _counts(owner, gone.id)).values())
        async with session_scope(owner) as session:
            await session.execute(delete(Workspace).where(Workspace.id == gone.id))
        assert await _counts(owner, gone.id) == dict.fromkeys(MODELS, 0)
        assert all((await _counts(owner, kept.id)).values())

    async def test_as_the_service_role_under_row_level_security(
        self, owner: async_sessionmaker[AsyncSession], two: tuple[Tenant, Tenant]
    ) -> None:
        gone, kept = two
        before = await _counts(owner, kept.id)
        async with session_scope(as_service(owner)) as session:
            await in_workspace(session, gone.id)
            await session.execute(delete(Workspace).where(Workspace.id == gone.id))
            # The trigger names each deleted workspace to reach its rows, then restores the
            # transaction's own.
            acting = await session.scalar(select(func.current_setting("app.workspace_id")))
            assert acting == str(gone.id)
        assert await _counts(owner, gone.id) == dict.fromkeys(MODELS, 0)
        assert await _counts(owner, kept.id) == before
