"""app.db.driver: statements run on the asyncpg connection belong to the session's transaction."""

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.db import driver, session_scope
from app.models import Workspace

_INSERT = "INSERT INTO workspaces (id, name, settings) VALUES ($1, $2, '{}'::jsonb)"


async def _exists(engine: AsyncEngine, workspace_id: uuid.UUID) -> bool:
    async with async_sessionmaker(engine)() as session:
        found = await session.scalar(select(Workspace.id).where(Workspace.id == workspace_id))
    return found is not None


class TestDriver:
    async def test_a_driver_write_commits_with_the_unit_of_work(self, engine: AsyncEngine) -> None:
        made = uuid.uuid4()
        async with session_scope(async_sessionmaker(engine)) as session:
            await (await driver(session)).execute(_INSERT, made, "driver-commit")
        try:
            assert await _exists(engine, made)
        finally:
            async with session_scope(async_sessionmaker(engine)) as session:
                await (await driver(session)).execute("DELETE FROM workspaces WHERE id = $1", made)
        assert not await _exists(engine, made)

    async def test_a_driver_write_rolls_back_with_the_unit_of_work(
        self, engine: AsyncEngine
    ) -> None:
        made = uuid.uuid4()

        class Abort(Exception):
            pass

        async def write_then_fail() -> None:
            async with session_scope(async_sessionmaker(engine)) as session:
                # The first statement of the session: the driver begins the transaction.
                await (await driver(session)).execute(_INSERT, made, "driver-rollback")
                assert await session.scalar(select(Workspace.name).where(Workspace.id == made))
                raise Abort

        with pytest.raises(Abort):
            await write_then_fail()
        assert not await _exists(engine, made)

    async def test_each_transaction_of_a_session_gets_its_own_connection_state(
        self, engine: AsyncEngine
    ) -> None:
        async with async_sessionmaker(engine)() as session:
            async with session.begin():
                first = await (await driver(session)).fetchval("SELECT txid_current()")
            async with session.begin():
                second = await (await driver(session)).fetchval("SELECT txid_current()")
        assert first != second
