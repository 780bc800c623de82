"""Deletions sync: tombstones written by every delete path, GET /v1/deletions, and their purge."""

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete, event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import session_scope
from app.jobs import enqueue
from app.models import Deletion, Job, Scope, Workspace
from app.services.keys import create_workspace
from app.worker import Worker
from tests.support.api import Answer, get_json, post_response, put_account, put_stakeholder
from tests.support.clock import at, stamp
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_invalid, problem

Sessions = async_sessionmaker[AsyncSession]
ITEM_FIELDS = {"kind", "id", "external_id", "deleted_at"}


async def db_now(sessionmaker: Sessions) -> datetime:
    """The database's now(): in a test, the start of its outer transaction, so every tombstone
    written over HTTP in the test carries it."""
    async with sessionmaker() as session:
        return (await session.execute(select(func.now()))).scalar_one()


async def deletions(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """GET /v1/deletions on one page (up to 200)."""
    page = await get_json(client, "/v1/deletions", **{"limit": 200, **params})
    assert page["next_cursor"] is None
    data: list[dict[str, Any]] = page["data"]
    for item in data:
        assert set(item) == ITEM_FIELDS  # ids only: never a name, email or comment
    return data


def tombstone(
    kind: str, object_id: str, when: datetime, external_id: str | None = None
) -> dict[str, Any]:
    return {"kind": kind, "id": object_id, "external_id": external_id, "deleted_at": stamp(when)}


async def answer(client: httpx.AsyncClient, stakeholder_id: str, external_id: str | None) -> str:
    body: dict[str, Any] = {
        "stakeholder_id": stakeholder_id,
        "score": 9,
        "comment": "Dana's private view",
        "submitted_at": at(1).isoformat(),
    }
    if external_id is not None:
        body["external_id"] = external_id
    response_id: str = (await post_response(client, body))["id"]
    return response_id


async def seed_tombstones(
    sessionmaker: Sessions, workspace_id: uuid.UUID, ages: dict[str, timedelta]
) -> datetime:
    """Account tombstones named by their key, deleted `age` before the database's now(), in
    the order given; returns that now()."""
    async with session_scope(sessionmaker) as session:
        now = (await session.execute(select(func.now()))).scalar_one()
        for object_id, age in ages.items():
            session.add(
                Deletion(
                    workspace_id=workspace_id,
                    kind="account",
                    object_id=object_id,
                    deleted_at=now - age,
                )
            )
    return now


@contextmanager
def counted_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements sent to the database inside the block."""
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)


class TestTombstones:
    async def test_deleting_an_account_records_it_its_stakeholders_and_their_responses(
        self, tenant: Tenant, sessionmaker: Sessions
    ) -> None:
        client = tenant.client
        for account_id in ("acme", "globex"):
            await put_account(client, account_id)
        await put_stakeholder(client, "lee", "acme", name="Lee", email="lee@acme.example")
        await put_stakeholder(client, "dana", "acme", name="Dana", email="dana@acme.example")
        await put_stakeholder(client, "gus", "globex")
        gone = {
            await answer(client, "dana", "crm-1"): "crm-1",
            await answer(client, "dana", None): None,
            await answer(client, "lee", "crm-2"): "crm-2",
        }
        await answer(client, "gus", "crm-3")

        assert (await client.delete("/v1/accounts/acme")).status_code == 204

        now = await db_now(sessionmaker)
        data = await deletions(client)
        # One trigger per table, in the order the cascade reaches them; ids in order within.
        assert data[:3] == [
            tombstone("account", "acme", now),
            tombstone("stakeholder", "dana", now),
            tombstone("stakeholder", "lee", now),
        ]
        assert sorted(data[3:], key=lambda d: d["id"]) == [
            tombstone("response", response_id, now, external_id)
            for response_id, external_id in sorted(gone.items())
        ]

    async def test_answers_given_at_the_account_by_someone_now_elsewhere_are_recorded(
        self, tenant: Tenant, sessionmaker: Sessions
    ) -> None:
        client = tenant.client
        for account_id in ("acme", "globex"):
            await put_account(client, account_id)
        await put_stakeholder(client, "dana", "acme")
        at_acme = await answer(client, "dana", "crm-1")
        await put_stakeholder(client, "dana", "globex", status=200)  # she moved

        assert (await client.delete("/v1/accounts/acme")).status_code == 204

        now = await db_now(sessionmaker)
        assert await deletions(client) == [
            tombstone("account", "acme", now),
            tombstone("response", at_acme, now, "crm-1"),
        ]

    async def test_deleting_a_stakeholder_records_them_and_their_responses(
        self, tenant: Tenant, sessionmaker: Sessions
    ) -> None:
        client = tenant.client
        await put_account(client, "acme")
        await put_stakeholder(client, "dana", "acme", email="dana@acme.example")
        await put_stakeholder(client, "lee", "acme")
        theirs = await answer(client, "dana", "crm-1")
        await answer(client, "lee", "crm-2")

        assert (await client.delete("/v1/stakeholders/dana")).status_code == 204

        now = await db_now(sessionmaker)
        assert await deletions(client) == [
            tombstone("stakeholder", "dana", now),
            tombstone("response", theirs, now, "crm-1"),
        ]

    async def test_a_delete_answered_404_records_nothing(self, tenant: Tenant) -> None:
        client = tenant.client
        await put_account(client, "acme")
        await put_stakeholder(client, "dana", "acme")
        assert (await client.delete("/v1/stakeholders/dana")).status_code == 204
        assert (await client.delete("/v1/accounts/acme")).status_code == 204
        before = await deletions(client)

        problem(await client.delete("/v1/stakeholders/dana"), 404)
        problem(await client.delete("/v1/accounts/acme"), 404)
        problem(await client.delete("/v1/accounts/nobody"), 404)

        assert await deletions(client) == before
        assert [(d["kind"], d["id"]) for d in before] == [
            ("stakeholder", "dana"),
            ("account", "acme"),
        ]

    async def test_an_object_recreated_and_deleted_again_gets_a_new_tombstone(
        self, tenant: Tenant
    ) -> None:
        client = tenant.client
        for _ in range(2):
            await put_account(client, "acme")
            await put_stakeholder(client, "dana", "acme")
            assert (await client.delete("/v1/stakeholders/dana")).status_code == 204
            assert (await client.delete("/v1/accounts/acme")).status_code == 204

        assert [(d["kind"], d["id"]) for d in await deletions(client)] == [
            ("stakeholder", "dana"),
            ("account", "acme"),
        ] * 2

    async def test_a_large_account_is_recorded_in_a_few_statements(
        self, tenant: Tenant, engine: AsyncEngine
    ) -> None:
        people, each = 300, 4
        await tenant.db.answers(
            [
                Answer(f"p{i}", "acme", 9, at(1) + timedelta(minutes=k))
                for i in range(people)
                for k in range(each)
            ]
        )

        with counted_statements(engine) as sent:
            assert (await tenant.client.delete("/v1/accounts/acme")).status_code == 204

        # The tombstones add no statement of their own: the triggers run inside the DELETE.
        assert not [s for s in sent if "deletions" in s]
        assert len(sent) < 20, sent
        counts: dict[str, int] = {}
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 200} | ({} if cursor is None else {"cursor": cursor})
            page = await get_json(tenant.client, "/v1/deletions", **params)
            for item in page["data"]:
                counts[item["kind"]] = counts.get(item["kind"], 0) + 1
            if (cursor := page["next_cursor"]) is None:
                break
        assert counts == {"account": 1, "stakeholder": people, "response": people * each}


class TestListDeletions:
    async def test_pages_follow_the_cursor_in_deletion_order(self, tenant: Tenant) -> None:
        client = tenant.client
        names = ["e", "c", "a", "d", "b"]
        for name in names:
            await put_account(client, name)
        for name in names:
            assert (await client.delete(f"/v1/accounts/{name}")).status_code == 204

        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2} | ({} if cursor is None else {"cursor": cursor})
            page = await get_json(client, "/v1/deletions", **params)
            seen += [d["id"] for d in page["data"]]
            pages += 1
            if (cursor := page["next_cursor"]) is None:
                break

        assert (seen, pages) == (names, 3)

    async def test_since_keeps_those_deleted_at_or_after_it(
        self, tenant: Tenant, sessionmaker: Sessions
    ) -> None:
        now = await seed_tombstones(
            sessionmaker,
            tenant.id,
            {"old": timedelta(days=30), "edge": timedelta(days=10), "new": timedelta(days=1)},
        )

        since = (now - timedelta(days=10)).isoformat()
        assert await deletions(tenant.client, since=since) == [
            tombstone("account", "edge", now - timedelta(days=10)),
            tombstone("account", "new", now - timedelta(days=1)),
        ]
        # Any offset names the same instant.
        shifted = (now - timedelta(days=10, seconds=-1)).astimezone().isoformat()
        assert [d["id"] for d in await deletions(tenant.client, since=shifted)] == ["new"]

    async def test_kind_keeps_one_kind(self, tenant: Tenant) -> None:
        client = tenant.client
        await put_account(client, "acme")
        await put_stakeholder(client, "dana", "acme")
        response_id = await answer(client, "dana", None)
        assert (await client.delete("/v1/accounts/acme")).status_code == 204

        by_kind = {
            kind: [d["id"] for d in await deletions(client, kind=kind)]
            for kind in ("account", "stakeholder", "response")
        }

        assert by_kind == {"account": ["acme"], "stakeholder": ["dana"], "response": [response_id]}
        assert_invalid(
            await client.get("/v1/deletions", params={"kind": "person"}), ["query", "kind"]
        )

    async def test_since_before_the_retention_horizon_is_410(
        self, tenant: Tenant, sessionmaker: Sessions
    ) -> None:
        now = await seed_tombstones(sessionmaker, tenant.id, {"kept": timedelta(days=89)})
        horizon = now - timedelta(days=90)

        r = await tenant.client.get(
            "/v1/deletions", params={"since": (now - timedelta(days=91)).isoformat()}
        )

        assert problem(r, 410) == {
            "type": "/problems/resync-required",
            "title": "Full resync required",
            "status": 410,
            "detail": f"tombstones are kept 90 days, so ones deleted before {horizon.isoformat()} "
            "may be gone: do a full resync, then sync deletions from the time it started",
            "errors": [{"loc": ["query", "since"], "msg": "before the retention horizon"}],
        }
        # At the horizon nothing can have been purged yet.
        assert [d["id"] for d in await deletions(tenant.client, since=horizon.isoformat())] == [
            "kept"
        ]

    async def test_a_cursor_kept_past_the_retention_horizon_is_410(
        self, tenant: Tenant, sessionmaker: Sessions
    ) -> None:
        # Not purged yet, but a client resuming after it could miss others that were.
        await seed_tombstones(
            sessionmaker,
            tenant.id,
            {"expired": timedelta(days=95), "kept": timedelta(days=1)},
        )
        first = await get_json(tenant.client, "/v1/deletions", limit=1)
        assert [d["id"] for d in first["data"]] == ["expired"]

        r = await tenant.client.get("/v1/deletions", params={"cursor": first["next_cursor"]})

        assert problem(r, 410)["errors"] == [
            {"loc": ["query", "cursor"], "msg": "before the retention horizon"}
        ]

    @pytest.mark.parametrize(
        "since",
        ["2026-11-01T00:00:00", "2026-11-01", "yesterday", "1764547200", "2026-13-01T00:00:00Z"],
    )
    async def test_a_naive_or_malformed_since_is_422(self, tenant: Tenant, since: str) -> None:
        r = await tenant.client.get("/v1/deletions", params={"since": since})

        assert_invalid(r, ["query", "since"])

    @pytest.mark.parametrize(
        "cursor",
        [
            "nonsense",
            # Another list's cursor (updated_at, id): not one of this list.
            "WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwiYWNtZSJd",
        ],
    )
    async def test_a_foreign_cursor_is_422(self, tenant: Tenant, cursor: str) -> None:
        r = await tenant.client.get("/v1/deletions", params={"cursor": cursor})

        assert_invalid(r, ["query", "cursor"])

    async def test_a_read_key_is_enough_and_no_key_is_401(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")
        assert (await tenant.client.delete("/v1/accounts/acme")).status_code == 204
        read = {"Authorization": f"Bearer {await tenant.make_key(Scope.READ)}"}

        r = await tenant.client.get("/v1/deletions", headers=read)
        assert r.status_code == 200
        assert [d["id"] for d in r.json()["data"]] == ["acme"]

        request = tenant.client.build_request("GET", "/v1/deletions")
        del request.headers["Authorization"]
        problem(await tenant.client.send(request), 401)


class TestTenancy:
    async def test_another_workspace_sees_none_and_deletes_nothing(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        await put_account(tenant.client, "acme")
        await put_stakeholder(tenant.client, "dana", "acme")
        await put_account(tenant.client, "globex")
        assert (await tenant.client.delete("/v1/accounts/acme")).status_code == 204
        other = await make_tenant("other")

        assert await deletions(other.client) == []
        assert await deletions(other.client, kind="account") == []
        # Its deletes of the first workspace's ids find nothing and record nothing.
        problem(await other.client.delete("/v1/accounts/globex"), 404)
        await put_account(other.client, "globex")
        assert (await other.client.delete("/v1/accounts/globex")).status_code == 204

        assert [(d["kind"], d["id"]) for d in await deletions(tenant.client)] == [
            ("account", "acme"),
            ("stakeholder", "dana"),
        ]
        assert [d["id"] for d in await deletions(other.client)] == ["globex"]
        assert (await tenant.client.get("/v1/accounts/globex")).status_code == 200


class TestWorkspaceDeletion:
    async def test_deleting_a_workspace_leaves_no_tombstones_behind(
        self, tenant: Tenant, make_tenant: MakeTenant, sessionmaker: Sessions
    ) -> None:
        client = tenant.client
        await put_account(client, "acme")
        await put_stakeholder(client, "dana", "acme")
        await put_stakeholder(client, "lee", "acme")
        await answer(client, "dana", "crm-1")
        assert (await client.delete("/v1/stakeholders/lee")).status_code == 204
        other = await make_tenant("other")
        await put_account(other.client, "acme")
        assert (await other.client.delete("/v1/accounts/acme")).status_code == 204

        async with session_scope(sessionmaker) as session:
            await session.execute(delete(Workspace).where(Workspace.id == tenant.id))

        async with sessionmaker() as session:
            left = await session.scalars(
                select(Deletion.workspace_id).where(
                    Deletion.workspace_id.in_([tenant.id, other.id])
                )
            )
            assert list(left) == [other.id]


@pytest_asyncio.fixture(loop_scope="session")
async def committed_sessions(engine: AsyncEngine) -> AsyncIterator[Sessions]:
    """Sessions that really commit, as the worker's do; its jobs deleted after."""
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    yield sessionmaker
    async with session_scope(sessionmaker) as session:
        await session.execute(delete(Job))


class TestPurge:
    async def test_the_purge_task_deletes_only_tombstones_past_retention(
        self, committed_sessions: Sessions
    ) -> None:
        async with session_scope(committed_sessions) as session:
            workspace, _ = await create_workspace(session, "purge")
        try:
            await seed_tombstones(
                committed_sessions,
                workspace.id,
                {"expired": timedelta(days=91), "kept": timedelta(days=89), "new": timedelta()},
            )
            async with session_scope(committed_sessions) as session:
                await enqueue(session, "deletions.purge")

            settings = Settings(database_url="postgresql://unused@localhost/unused")
            assert await Worker(committed_sessions, settings).drain() == 1

            async with committed_sessions() as session:
                left = await session.scalars(
                    select(Deletion.object_id)
                    .where(Deletion.workspace_id == workspace.id)
                    .order_by(Deletion.seq)
                )
                assert list(left) == ["kept", "new"]
        finally:
            async with session_scope(committed_sessions) as session:
                await session.execute(delete(Workspace).where(Workspace.id == workspace.id))

    async def test_the_purge_keeps_the_configured_retention(
        self, committed_sessions: Sessions
    ) -> None:
        async with session_scope(committed_sessions) as session:
            workspace, _ = await create_workspace(session, "purge")
        try:
            await seed_tombstones(
                committed_sessions,
                workspace.id,
                {"expired": timedelta(days=121), "kept": timedelta(days=119)},
            )
            async with session_scope(committed_sessions) as session:
                await enqueue(session, "deletions.purge")

            settings = Settings(
                database_url="postgresql://unused@localhost/unused", deletion_retention_days=120
            )
            assert await Worker(committed_sessions, settings).drain() == 1

            async with committed_sessions() as session:
                left = await session.scalars(
                    select(Deletion.object_id).where(Deletion.workspace_id == workspace.id)
                )
                assert list(left) == ["kept"]
        finally:
            async with session_scope(committed_sessions) as session:
                await session.execute(delete(Workspace).where(Workspace.id == workspace.id))
