"""The data version moves once per transaction and workspace (migration 0024), and still with
every committed change."""

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import in_workspace, session_scope
from app.services.data_versions import data_version
from tests.support.harness import MakeTenant, Tenant, as_service


async def _version(sessions: async_sessionmaker[AsyncSession], workspace_id: uuid.UUID) -> int:
    async with session_scope(sessions) as session:
        await in_workspace(session, workspace_id)
        return await data_version(session, workspace_id)


async def _rename(session: AsyncSession, account: str, name: str) -> None:
    await session.execute(
        text("UPDATE accounts SET name = :name WHERE id = :id"), {"name": name, "id": account}
    )


class TestOncePerTransaction:
    async def test_statements_of_one_transaction_move_it_once(self, tenant: Tenant) -> None:
        await tenant.db.account("acme")
        await tenant.db.account("globex")
        sessions = as_service(tenant.db.sessionmaker)
        before = await _version(sessions, tenant.id)

        async with session_scope(sessions) as session:
            await in_workspace(session, tenant.id)
            await _rename(session, "acme", "Acme 2")
            await _rename(session, "globex", "Globex 2")
            await _rename(session, "acme", "Acme 3")
        once = await _version(sessions, tenant.id)
        async with session_scope(sessions) as session:
            await in_workspace(session, tenant.id)
            await _rename(session, "acme", "Acme 4")
        again = await _version(sessions, tenant.id)

        assert once == before + 1
        assert again == once + 1  # the setting ended with its transaction

    async def test_a_rolled_back_savepoint_takes_its_increment_and_its_memory(
        self, tenant: Tenant
    ) -> None:
        await tenant.db.account("acme")
        sessions = as_service(tenant.db.sessionmaker)
        before = await _version(sessions, tenant.id)

        async with session_scope(sessions) as session:
            await in_workspace(session, tenant.id)
            savepoint = await session.begin_nested()
            await _rename(session, "acme", "Undone")
            await savepoint.rollback()
            await _rename(session, "acme", "Kept")

        # The write that stayed moved it, although a statement before it had incremented.
        assert await _version(sessions, tenant.id) == before + 1

    async def test_another_workspace_in_the_same_transaction_moves_too(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other_tenant = await make_tenant("other")
        await tenant.db.account("acme")
        await other_tenant.db.account("acme")
        sessions = as_service(tenant.db.sessionmaker)
        before = (await _version(sessions, tenant.id), await _version(sessions, other_tenant.id))

        async with session_scope(sessions) as session:
            for workspace in (tenant.id, other_tenant.id, tenant.id):
                await in_workspace(session, workspace)
                await _rename(session, "acme", f"Acme in {workspace}")

        after = (await _version(sessions, tenant.id), await _version(sessions, other_tenant.id))
        # The first workspace again after the second: incremented again (it remembers one).
        assert after == (before[0] + 2, before[1] + 1)
