"""Row-level security (migrations 0013 and 0014): the service's role sees and writes only the rows
of the workspace its transaction names, whatever a query forgets to filter.

Every test here runs as the service's role (the app's sessions do too: tests.support.harness);
the test's own builders log in as the tables' owner.
"""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import (
    SERVICE_ROLE,
    WORKSPACE_SETTING,
    driver,
    in_workspace,
    session_scope,
    unbound_role,
)
from app.embedded import plain_dsn, service_login
from app.jobs import JobContext, Registry, enqueue
from app.models import Account, Job, SurveyResponse
from app.services.invitations import token_holder
from app.services.keys import authenticate, find_key
from app.worker import Worker
from tests.support.api import Answer, post_answers
from tests.support.harness import MakeTenant, Tenant, as_service
from tests.support.invitations import invite, people

WHEN = datetime.fromisoformat("2026-02-01T12:00:00+00:00")

# Every table with a workspace_id column, whether RLS is on and forced, and its policies.
TENANT_TABLES = """
SELECT c.relname AS name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       COALESCE(
           (SELECT json_agg(json_build_object(
                'name', p.policyname, 'roles', p.roles, 'cmd', p.cmd, 'qual', p.qual,
                'check', p.with_check, 'permissive', p.permissive))
            FROM pg_policies AS p
            WHERE p.schemaname = n.nspname AND p.tablename = c.relname),
           '[]'::json) AS policies
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
  AND EXISTS (
      SELECT FROM pg_attribute AS a
      WHERE a.attrelid = c.oid AND a.attname = 'workspace_id' AND NOT a.attisdropped
  )
ORDER BY c.relname
"""


def scoped(policy: dict[str, object]) -> bool:
    """A policy for everyone that admits the transaction's workspace only."""
    return (
        policy["roles"] == ["public"]
        and policy["cmd"] == "ALL"
        and policy["permissive"] == "PERMISSIVE"
        and policy["check"] is None  # USING applies to new rows too
        and WORKSPACE_SETTING in str(policy["qual"])
        and "workspace_id" in str(policy["qual"])
    )


@pytest_asyncio.fixture(loop_scope="session")
async def service(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    return as_service(sessionmaker)


@pytest_asyncio.fixture(loop_scope="session")
async def two(make_tenant: MakeTenant) -> AsyncIterator[tuple[Tenant, Tenant]]:
    """Two workspaces with accounts, stakeholders, responses and an invitation each."""
    made = (await make_tenant("rls-a"), await make_tenant("rls-b"))
    for tenant in made:
        await post_answers(tenant.client, [Answer("p1", "acme", 9, WHEN)])
        await people(tenant, "p2", account_id="beta")
        await invite(tenant.client, "p2")
    yield made


async def _tables(session: AsyncSession) -> list[str]:
    return [row.name for row in await session.execute(text(TENANT_TABLES))]


class TestPolicies:
    async def test_every_table_with_a_workspace_id_is_forced_and_scoped(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        async with session_scope(sessionmaker) as session:
            rows = list(await session.execute(text(TENANT_TABLES)))
        names = {row.name for row in rows}
        assert {"responses", "stakeholders", "accounts", "api_keys", "jobs"} <= names
        unguarded = [
            row.name
            for row in rows
            if not (row.enabled and row.forced and any(scoped(p) for p in row.policies))
        ]
        assert unguarded == []

    async def test_no_policy_lets_everyone_past_the_workspace(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """Policies of one table are OR-ed: a second one for everyone would undo the first.
        Only the look-up functions' own role has one that spans workspaces."""
        async with session_scope(sessionmaker) as session:
            rows = list(await session.execute(text(TENANT_TABLES)))
        others = sorted(
            (row.name, p["name"], p["roles"]) for row in rows for p in row.policies if not scoped(p)
        )
        assert others == [
            ("api_keys", "lookup", ["nps_lookup"]),
            ("invitations", "lookup", ["nps_lookup"]),
            ("jobs", "lookup", ["nps_lookup"]),
        ]

    async def test_a_new_tenant_table_without_a_policy_is_caught(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        """The check above, shown failing: a table added with a workspace_id and no policy."""
        async with sessionmaker() as session:
            await session.execute(text("CREATE TABLE notes_test (workspace_id uuid, body text)"))
            rows = list(await session.execute(text(TENANT_TABLES)))
            await session.rollback()
        flagged = [
            row.name
            for row in rows
            if not (row.enabled and row.forced and any(scoped(p) for p in row.policies))
        ]
        assert flagged == ["notes_test"]


class TestForgottenFilters:
    async def test_a_transaction_in_no_workspace_sees_no_tenant_row(
        self,
        two: tuple[Tenant, Tenant],
        sessionmaker: async_sessionmaker[AsyncSession],
        service: async_sessionmaker[AsyncSession],
    ) -> None:
        async with session_scope(sessionmaker) as owner:
            tables = await _tables(owner)
            stored = {t: await owner.scalar(text(f"SELECT count(*) FROM {t}")) for t in tables}
        assert min(stored["responses"], stored["invitations"]) >= 2  # the owner sees them
        async with session_scope(service) as session:
            seen = {t: await session.scalar(text(f"SELECT count(*) FROM {t}")) for t in tables}
        # No workspace named: nothing, but the periodic jobs (of no workspace) on jobs.
        periodic = await _count_periodic_jobs(sessionmaker)
        assert seen == {t: periodic if t == "jobs" else 0 for t in tables}

    async def test_a_query_without_a_workspace_filter_sees_its_own_workspace_only(
        self, two: tuple[Tenant, Tenant], service: async_sessionmaker[AsyncSession]
    ) -> None:
        a, _ = two
        async with session_scope(service) as session:
            await in_workspace(session, a.id)
            tables = await _tables(session)
            foreign = {
                t: await session.scalar(
                    text(f"SELECT count(*) FROM {t} WHERE workspace_id IS DISTINCT FROM :a"),
                    {"a": a.id},
                )
                for t in tables
            }
            # What the app's code would do with the filter forgotten.
            workspaces = set(await session.scalars(select(SurveyResponse.workspace_id)))
        assert foreign == dict.fromkeys(tables, 0)
        assert workspaces == {a.id}

    async def test_a_service_read_with_another_workspace_s_id_finds_nothing(
        self, two: tuple[Tenant, Tenant], service: async_sessionmaker[AsyncSession]
    ) -> None:
        a, b = two
        async with session_scope(service) as session:
            await in_workspace(session, a.id)
            found = await session.scalar(
                select(func.count())
                .select_from(Account)
                .where(Account.workspace_id == b.id, Account.id == "acme")
            )
        assert found == 0

    async def test_another_workspace_s_rows_cannot_be_written(
        self, two: tuple[Tenant, Tenant], service: async_sessionmaker[AsyncSession]
    ) -> None:
        a, b = two
        async with session_scope(service) as session:
            await in_workspace(session, a.id)
            changed = await session.execute(
                update(Account).where(Account.workspace_id == b.id).values(name="taken")
            )
            assert changed.rowcount == 0  # type: ignore[attr-defined]
        async with service() as session:
            await in_workspace(session, a.id)
            session.add(Account(workspace_id=b.id, id="planted", name="planted"))
            with pytest.raises(DBAPIError, match="row-level security"):
                await session.flush()

    async def test_the_workspace_ends_with_its_transaction(
        self, two: tuple[Tenant, Tenant], service: async_sessionmaker[AsyncSession]
    ) -> None:
        a, _ = two
        async with session_scope(service) as session:
            await in_workspace(session, a.id)
            assert await session.scalar(select(func.count()).select_from(Account)) == 2
        async with session_scope(service) as session:
            # The setting reads '' after a transaction that set it: no workspace, no error.
            assert await session.scalar(select(func.count()).select_from(Account)) == 0


async def _count_periodic_jobs(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with session_scope(sessionmaker) as owner:
        count = await owner.scalar(
            select(func.count()).select_from(Job).where(Job.workspace_id.is_(None))
        )
    return count or 0


class TestAuthentication:
    async def test_an_api_key_names_its_workspace_in_the_statement_that_finds_it(
        self, two: tuple[Tenant, Tenant], service: async_sessionmaker[AsyncSession]
    ) -> None:
        a, _ = two
        async with session_scope(service) as session:
            key = await authenticate(session, a.admin_key, now=WHEN)
            setting = await session.scalar(text(f"SELECT current_setting('{WORKSPACE_SETTING}')"))
            workspaces = set(await session.scalars(select(SurveyResponse.workspace_id)))
        assert key is not None
        assert key.workspace_id == a.id
        assert (setting, workspaces) == (str(a.id), {a.id})

    async def test_an_unknown_key_names_no_workspace(
        self, two: tuple[Tenant, Tenant], service: async_sessionmaker[AsyncSession]
    ) -> None:
        async with session_scope(service) as session:
            assert await authenticate(session, "nps_" + "x" * 43, now=WHEN) is None
            count = await session.scalar(select(func.count()).select_from(SurveyResponse))
        assert count == 0

    async def test_an_invitation_token_names_its_workspace(
        self, make_tenant: MakeTenant, service: async_sessionmaker[AsyncSession]
    ) -> None:
        a, b = await make_tenant("token-a"), await make_tenant("token-b")
        for tenant in (a, b):
            await people(tenant, "p1")
        made = await invite(b.client, "p1")
        async with session_scope(service) as session:
            holder = await token_holder(session, made["token"])
            accounts = set(await session.scalars(select(Account.workspace_id)))
        assert holder is not None
        assert holder.workspace_id == b.id
        assert accounts == {b.id}

    async def test_the_cli_finds_a_key_of_any_workspace_and_acts_in_it(
        self, two: tuple[Tenant, Tenant], service: async_sessionmaker[AsyncSession]
    ) -> None:
        _, b = two
        async with session_scope(service) as session:
            key = await find_key(session, b.admin_key[:12])
            accounts = set(await session.scalars(select(Account.workspace_id)))
        assert key is not None
        assert key.workspace_id == b.id
        assert accounts == {b.id}


class TestWorker:
    async def test_a_job_runs_in_its_own_workspace(
        self, two: tuple[Tenant, Tenant], service: async_sessionmaker[AsyncSession]
    ) -> None:
        a, b = two
        registry = Registry()
        seen: list[set[uuid.UUID]] = []

        @registry.task("test.look")
        async def look(ctx: JobContext) -> None:
            # No workspace filter: the job's own workspace is all there is.
            seen.append(set(await ctx.session.scalars(select(Account.workspace_id))))

        async with session_scope(service) as session:
            for tenant in (b, a):
                await in_workspace(session, tenant.id)
                await enqueue(session, "test.look", workspace_id=tenant.id, registry=registry)
        # Claimed across workspaces by a worker acting in none.
        assert await Worker(service, Settings(), registry=registry).drain() == 2
        assert sorted(seen, key=lambda s: str(s)) == sorted([{a.id}, {b.id}], key=lambda s: str(s))

    async def test_a_periodic_purge_reaches_every_workspace(
        self, two: tuple[Tenant, Tenant], service: async_sessionmaker[AsyncSession]
    ) -> None:
        from app.services.idempotency import purge_expired

        old = datetime.now().astimezone() - timedelta(hours=72)
        async with session_scope(service) as session:
            for tenant in two:
                await in_workspace(session, tenant.id)
                await (await driver(session)).execute(
                    "INSERT INTO idempotency_keys (workspace_id, key, fingerprint, status_code,"
                    " body, created_at) VALUES ($1, 'old', $2, 201, '', $3)",
                    tenant.id,
                    b"\0" * 32,
                    old,
                )
        async with session_scope(service) as session:
            gone = await purge_expired(session, hours=48)
        assert gone == 2


class TestServiceRole:
    async def test_the_service_role_bypasses_nothing_and_owns_nothing(
        self, database_url: str
    ) -> None:
        owner = plain_dsn(database_url)
        conn = await asyncpg.connect(plain_dsn(await service_login(owner)))
        try:
            row = await conn.fetchrow(
                "SELECT current_user AS name, rolsuper, rolbypassrls, "
                "(SELECT count(*) FROM pg_class WHERE relowner = r.oid) AS owned "
                "FROM pg_roles AS r WHERE rolname = current_user"
            )
            responses = await conn.fetchval("SELECT count(*) FROM responses")
        finally:
            await conn.close()
        assert dict(row) == {
            "name": SERVICE_ROLE,
            "rolsuper": False,
            "rolbypassrls": False,
            "owned": 0,
        }
        assert responses == 0

    async def test_serve_warns_of_a_role_that_row_level_security_cannot_bind(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        service: async_sessionmaker[AsyncSession],
    ) -> None:
        async with session_scope(service) as session:
            assert await unbound_role(session) is None
        async with session_scope(sessionmaker) as session:  # the tests' superuser
            assert await unbound_role(session) == await session.scalar(text("SELECT current_user"))
