"""A workspace keeps an admin key, and any key can ask which workspace and key it is."""

import asyncio
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.errors import LastAdminKey
from app.models import ApiKey, Scope, Workspace
from app.services.keys import active_admin_keys, revoke_api_key
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_not_found, assert_unauthorized, problem
from tests.support.processes import eventually

LAST_ADMIN = "/problems/last-admin-key"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def new_key(tenant: Tenant, scopes: list[str], label: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = (
        {"scopes": scopes} if label is None else {"scopes": scopes, "label": label}
    )
    r = await tenant.client.post("/v1/api-keys", json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def revoked(tenant: Tenant) -> dict[str, bool]:
    """Each key's prefix and whether it is revoked."""
    r = await tenant.client.get("/v1/api-keys")
    assert r.status_code == 200, r.text
    return {k["prefix"]: k["revoked_at"] is not None for k in r.json()}


def assert_last_admin(body: dict[str, Any], prefix: str) -> None:
    assert (body["type"], body["title"]) == (LAST_ADMIN, "Last admin key"), body
    detail = body["detail"]
    assert detail.startswith(f"{prefix} is the workspace's last active admin key"), detail
    # How to go on, and how to recover if it is too late.
    for hint in ("POST /v1/api-keys", "NPS_BOOTSTRAP_API_KEY", "nps create-key"):
        assert hint in detail, detail


class TestRevokeTheLastAdminKey:
    async def test_the_only_admin_key_is_409_and_keeps_working(self, tenant: Tenant) -> None:
        prefix = tenant.admin_key[:12]

        r = await tenant.client.delete(f"/v1/api-keys/{prefix}")

        assert_last_admin(problem(r, 409), prefix)
        assert await revoked(tenant) == {prefix: False}

    async def test_read_and_write_keys_are_not_admin_keys(self, tenant: Tenant) -> None:
        read = await new_key(tenant, ["read"])
        write = await new_key(tenant, ["write", "read"])
        admin = tenant.admin_key[:12]

        assert_last_admin(problem(await tenant.client.delete(f"/v1/api-keys/{admin}"), 409), admin)
        # Keys without the admin scope are revoked as before.
        assert (await tenant.client.delete(f"/v1/api-keys/{read['prefix']}")).status_code == 204
        assert (await tenant.client.delete(f"/v1/api-keys/{write['prefix']}")).status_code == 204
        assert await revoked(tenant) == {admin: False, read["prefix"]: True, write["prefix"]: True}

    async def test_an_admin_key_that_is_not_the_last_is_revoked(self, tenant: Tenant) -> None:
        second = await new_key(tenant, ["admin"])
        first = tenant.admin_key[:12]

        # The key revokes itself: another admin key is left.
        r = await tenant.client.delete(f"/v1/api-keys/{first}")
        assert r.status_code == 204, r.text
        assert_unauthorized(await tenant.client.get("/v1/api-keys"))

        # Now the second is the last one.
        as_second = bearer(second["key"])
        r = await tenant.client.delete(f"/v1/api-keys/{second['prefix']}", headers=as_second)
        assert_last_admin(problem(r, 409), second["prefix"])
        r = await tenant.client.get("/v1/api-keys", headers=as_second)
        assert {k["prefix"]: k["revoked_at"] is not None for k in r.json()} == {
            first: True,
            second["prefix"]: False,
        }

    async def test_a_revoked_second_admin_key_does_not_count(self, tenant: Tenant) -> None:
        second = await new_key(tenant, ["admin"])
        assert (await tenant.client.delete(f"/v1/api-keys/{second['prefix']}")).status_code == 204
        first = tenant.admin_key[:12]

        r = await tenant.client.delete(f"/v1/api-keys/{first}")

        assert_last_admin(problem(r, 409), first)
        assert await revoked(tenant) == {first: False, second["prefix"]: True}

    async def test_revoking_a_revoked_admin_key_again_is_204(self, tenant: Tenant) -> None:
        second = await new_key(tenant, ["admin"])
        url = f"/v1/api-keys/{second['prefix']}"
        assert (await tenant.client.delete(url)).status_code == 204

        # It is no longer an active admin key, so the rule does not apply to it.
        assert (await tenant.client.delete(url)).status_code == 204
        assert await revoked(tenant) == {tenant.admin_key[:12]: False, second["prefix"]: True}

    async def test_another_workspace_is_told_404_and_changes_nothing(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        b = await make_tenant("b")
        second = await new_key(tenant, ["admin"])

        for prefix in (tenant.admin_key[:12], second["prefix"]):
            assert_not_found(await b.client.delete(f"/v1/api-keys/{prefix}"))
        # B's own keys count for B only: A's two admin keys do not make B's one revocable.
        r = await b.client.delete(f"/v1/api-keys/{b.admin_key[:12]}")
        assert_last_admin(problem(r, 409), b.admin_key[:12])
        assert await revoked(tenant) == {tenant.admin_key[:12]: False, second["prefix"]: False}


async def _admin_keys_left(engine: AsyncEngine, tenant: Tenant) -> int:
    async with async_sessionmaker(engine)() as session:
        return await active_admin_keys(session, tenant.id)


class TestConcurrentRevocations:
    async def test_a_revocation_waits_for_the_concurrent_one_and_is_then_refused(
        self, committed: Tenant, engine: AsyncEngine
    ) -> None:
        second = await new_key(committed, ["admin"])
        sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        async with sessions() as first, sessions() as other, engine.connect() as probe:
            # The first revocation is made and not committed yet.
            await revoke_api_key(first, prefix=committed.admin_key[:12], workspace_id=committed.id)
            pid = await other.scalar(text("SELECT pg_backend_pid()"))
            racing = asyncio.create_task(
                revoke_api_key(other, prefix=second["prefix"], workspace_id=committed.id)
            )

            async def blocked_or_done() -> bool:
                waiting = await probe.scalar(
                    text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid},
                )
                return racing.done() or waiting == "Lock"

            await eventually(blocked_or_done, "the second revocation to finish or wait", every=0.05)
            # Counting the other key as still active, it would have gone through at once.
            assert not racing.done()
            await first.commit()
            with pytest.raises(LastAdminKey):
                await racing
            await other.rollback()
        assert await _admin_keys_left(engine, committed) == 1


class TestCurrentWorkspace:
    async def _workspace(
        self, sessionmaker: async_sessionmaker[AsyncSession], tenant: Tenant
    ) -> dict[str, Any]:
        async with sessionmaker() as session:
            row = await session.get_one(Workspace, tenant.id)
            return {"id": str(row.id), "name": row.name, "created_at": row.created_at}

    async def test_every_scope_sees_its_workspace_and_its_own_key(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        workspace = await self._workspace(sessionmaker, tenant)
        made = [
            await new_key(tenant, ["read"], label="dashboard"),
            await new_key(tenant, ["write"], label="crm sync"),
            await new_key(tenant, ["admin"]),
        ]
        async with sessionmaker() as session:
            bootstrap = await session.scalar(
                select(ApiKey).where(ApiKey.prefix == tenant.admin_key[:12])
            )
        assert bootstrap is not None
        expected = [
            (tenant.admin_key, ["admin"], "bootstrap admin", bootstrap.created_at),
            *(
                (k["key"], k["scopes"], k["label"], datetime.fromisoformat(k["created_at"]))
                for k in made
            ),
        ]

        for secret, scopes, label, created_at in expected:
            r = await tenant.client.get("/v1/workspace", headers=bearer(secret))
            assert r.status_code == 200, r.text
            body = r.json()
            instants = (body["workspace"]["created_at"], body["caller"]["created_at"])
            assert body == {
                "workspace": {**workspace, "created_at": instants[0]},
                "caller": {
                    "kind": "api_key",
                    "prefix": secret[:12],
                    "scopes": scopes,
                    "label": label,
                    "created_at": instants[1],
                },
            }
            assert [datetime.fromisoformat(t) for t in instants] == [
                workspace["created_at"],
                created_at,
            ]
            assert secret[12:] not in r.text

    async def test_each_workspace_sees_only_itself(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        # The same name, two workspaces: each key answers with its own.
        twin = await make_tenant("tenant-a")
        b_read = await twin.make_key(Scope.READ)

        mine = (await tenant.client.get("/v1/workspace")).json()
        theirs = (await twin.client.get("/v1/workspace", headers=bearer(b_read))).json()

        assert mine["workspace"]["id"] == str(tenant.id)
        assert theirs["workspace"]["id"] == str(twin.id)
        assert theirs["caller"]["prefix"] == b_read[:12]
        assert tenant.admin_key[:12] not in str(theirs)

    async def test_without_a_key_or_with_a_revoked_one_is_401(self, tenant: Tenant) -> None:
        read = await new_key(tenant, ["read"])
        assert (await tenant.client.delete(f"/v1/api-keys/{read['prefix']}")).status_code == 204

        assert_unauthorized(await tenant.client.get("/v1/workspace", headers=bearer(read["key"])))
        request = tenant.client.build_request("GET", "/v1/workspace")
        del request.headers["Authorization"]
        assert_unauthorized(await tenant.client.send(request))
