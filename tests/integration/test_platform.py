"""The platform under the endpoints: schema, migrations, failures, probes, limits, the CLI."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from app import migrate
from app.db import Base, session_scope
from app.launch import ensure_default_workspace
from app.models import ApiKey, Scope, SurveyResponse, Workspace
from app.services.keys import hash_key
from tests.support.harness import Tenant, build_app, client_for
from tests.support.problems import problem
from tests.support.processes import run_nps


def _schema_diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


class TestMigrations:
    async def test_models_and_migrations_agree(self, engine: AsyncEngine) -> None:
        async with engine.connect() as connection:
            diff = await connection.run_sync(_schema_diff)
        assert diff == []

    async def test_downgrade_to_base_and_upgrade_again(self, empty_database_url: str) -> None:
        await asyncio.to_thread(migrate.upgrade, empty_database_url)
        await asyncio.to_thread(migrate.downgrade, empty_database_url, "base")
        probe = create_async_engine(empty_database_url)
        try:
            async with probe.connect() as connection:
                tables = await connection.scalar(
                    text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                )
                assert tables == 1  # only alembic_version is left
            await asyncio.to_thread(migrate.upgrade, empty_database_url)
            async with probe.connect() as connection:
                assert await connection.run_sync(_schema_diff) == []
        finally:
            await probe.dispose()


FAILING_WORKSPACE = uuid.uuid4()


class FailingCommit(Session):
    """A session whose commit fails as if the connection dropped at that moment."""


@event.listens_for(FailingCommit, "before_commit")
def _fail_commit(session: Session) -> None:
    raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))


@pytest_asyncio.fixture(loop_scope="session")
async def failing_client(
    engine: AsyncEngine,
) -> AsyncIterator[tuple[httpx.AsyncClient, async_sessionmaker[AsyncSession]]]:
    async with engine.connect() as connection:
        outer = await connection.begin()
        failing = async_sessionmaker(
            bind=connection,
            expire_on_commit=False,
            sync_session_class=FailingCommit,
            join_transaction_mode="create_savepoint",
        )
        plain = async_sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        async with session_scope(plain) as session:
            session.add(Workspace(id=FAILING_WORKSPACE, name="failing"))
            await session.flush()
            session.add(
                ApiKey(
                    workspace_id=FAILING_WORKSPACE,
                    prefix="nps_failing",
                    key_hash=hash_key("nps_failing-key"),
                    scopes=["admin"],
                )
            )
        # Authentication reads the key before the failing commit; the write is what fails.
        app = build_app(failing, engine)
        async with client_for(app, "nps_failing-key") as client:
            yield client, plain
        await outer.rollback()


class TestDatabaseFailure:
    async def test_failed_commit_is_503_with_retry_after_and_stores_nothing(
        self, failing_client: tuple[httpx.AsyncClient, async_sessionmaker[AsyncSession]]
    ) -> None:
        client, plain = failing_client
        r = await client.put("/v1/accounts/acme", json={"name": "Acme"})
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"] == "5"
        assert r.json() == {
            "type": "/problems/service-unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": "the database is unavailable; retry later",
        }
        async with plain() as session:
            count = await session.scalar(
                text("SELECT count(*) FROM accounts WHERE workspace_id = :w"),
                {"w": FAILING_WORKSPACE},
            )
        assert count == 0


class TestProbes:
    async def test_healthz(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/healthz")
        assert (r.status_code, r.json()) == (200, {"status": "ok"})

    async def test_readyz_when_migrated(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/readyz")
        assert (r.status_code, r.json()) == (200, {"status": "ready"})

    async def test_readyz_on_unmigrated_database(
        self, empty_database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        bare = create_async_engine(empty_database_url)
        try:
            async with client_for(build_app(sessionmaker, bare)) as client:
                r = await client.get("/readyz")
        finally:
            await bare.dispose()
        assert r.status_code == 503
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 503
        # Not "unreachable": the database answers, nothing has migrated it yet.
        assert r.json()["detail"] == (
            "the database has no schema yet: bootstrap pending (in production: `nps migrate`)"
        )

    async def test_readyz_on_unreachable_database(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        nowhere = create_async_engine(
            "postgresql+asyncpg://nobody@127.0.0.1:1/none", connect_args={"timeout": 2}
        )
        async with client_for(build_app(sessionmaker, nowhere)) as client:
            r = await client.get("/readyz")
        await nowhere.dispose()
        assert r.status_code == 503
        assert r.json()["detail"] == "the database is unreachable"


class TestHttpEdges:
    async def test_unknown_route_is_problem_json(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/nowhere")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json() == {
            "type": "/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "Not Found",
        }

    async def test_wrong_method_is_problem_json(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/v1/accounts/acme", json={})
        assert r.status_code == 405
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 405

    async def test_body_over_limit_is_413_before_anything_is_stored(self, tenant: Tenant) -> None:
        big = {"name": "Acme", "attributes": {"blob": "x" * (2 * 1024 * 1024)}}
        r = await tenant.client.put("/v1/accounts/acme", json=big)
        assert r.status_code == 413
        assert r.headers["content-type"] == "application/problem+json"
        assert (await tenant.client.get("/v1/accounts/acme")).status_code == 404

    async def test_malformed_json_is_422(self, tenant: Tenant) -> None:
        r = await tenant.client.put(
            "/v1/accounts/acme", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["loc"][0] == "body"


BOOTSTRAP = "nps_bootstrap-0123456789abcdefghijk"


class TestBootstrap:
    async def test_first_start_creates_default_workspace_with_given_key(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        async with session_scope(sessionmaker) as session:
            await session.execute(text("DELETE FROM workspaces"))
            # The operator chose the key: nothing secret is printed.
            assert await ensure_default_workspace(session, BOOTSTRAP) is None
            assert await ensure_default_workspace(session, BOOTSTRAP) is None
            workspaces = (await session.scalars(select(Workspace))).all()
            assert [w.name for w in workspaces] == ["default"]
            key = await session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(BOOTSTRAP)))
            assert key is not None
            assert key.scopes == [Scope.ADMIN.value]

    async def test_bootstrap_key_added_to_existing_default_workspace(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        async with session_scope(sessionmaker) as session:
            await session.execute(text("DELETE FROM workspaces"))
            generated = await ensure_default_workspace(session, None)
            assert generated is not None
            assert await ensure_default_workspace(session, BOOTSTRAP) is None
            count = await session.scalar(select(func.count()).select_from(ApiKey))
            assert count == 2

    async def test_production_never_generates_and_prints_a_key(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        async with session_scope(sessionmaker) as session:
            await session.execute(text("DELETE FROM workspaces"))
            assert await ensure_default_workspace(session, None, generate=False) is None
            assert await session.scalar(select(func.count()).select_from(Workspace)) == 0


class TestCli:
    async def test_bad_configuration_is_a_one_line_error(self, empty_database_url: str) -> None:
        done = await asyncio.to_thread(
            run_nps, empty_database_url, "migrate", NPS_BOOTSTRAP_API_KEY="short"
        )
        assert done.returncode == 1
        assert done.stderr.strip() == (
            "nps: invalid configuration: NPS_BOOTSTRAP_API_KEY: "
            "String should have at least 32 characters"
        )

    @pytest.mark.usefixtures("engine")
    async def test_workspace_and_keys_from_the_command_line(self, empty_database_url: str) -> None:
        url = empty_database_url
        assert (await asyncio.to_thread(run_nps, url, "migrate")).returncode == 0
        made = await asyncio.to_thread(run_nps, url, "create-workspace", "Globex")
        assert made.returncode == 0, made.stderr
        admin = made.stdout.strip().splitlines()[-1]
        assert admin.startswith("nps_")
        probe = create_async_engine(url)
        try:
            async with probe.connect() as connection:
                workspace_id = await connection.scalar(
                    text("SELECT workspace_id FROM api_keys WHERE key_hash = :h"),
                    {"h": hash_key(admin)},
                )
            assert workspace_id is not None
            read = await asyncio.to_thread(
                run_nps, url, "create-key", "--workspace", str(workspace_id), "--scope", "read"
            )
            assert read.returncode == 0, read.stderr
            read_key = read.stdout.strip().splitlines()[-1]
            revoked = await asyncio.to_thread(run_nps, url, "revoke-key", read_key[:12])
            assert revoked.returncode == 0, revoked.stderr
            unknown = await asyncio.to_thread(run_nps, url, "revoke-key", "nps_nothing")
            assert unknown.returncode != 0
            assert "no API key" in unknown.stderr
            async with probe.connect() as connection:
                rows = (
                    await connection.execute(
                        text(
                            "SELECT scopes, revoked_at IS NOT NULL"
                            " FROM api_keys ORDER BY created_at"
                        )
                    )
                ).all()
            assert [tuple(r) for r in rows] == [(["admin"], False), (["read"], True)]
        finally:
            await probe.dispose()


@pytest.mark.parametrize("score", [-1, 11])
async def test_database_refuses_scores_outside_0_to_10(
    tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession], score: int
) -> None:
    """The 0-10 rule holds in the database too, not only in request validation."""
    await tenant.client.put("/v1/accounts/acme", json={})
    await tenant.client.put("/v1/stakeholders/dana", json={"account_id": "acme"})
    async with sessionmaker() as session:
        with pytest.raises(IntegrityError, match="ck_responses_score_range"):
            async with session.begin():
                session.add(
                    SurveyResponse(
                        workspace_id=tenant.id,
                        stakeholder_id="dana",
                        account_id="acme",
                        role="user",
                        job_level="other",
                        score=score,
                        submitted_at=datetime.now(UTC),
                    )
                )


class TestUnstorableInput:
    """What PostgreSQL or a serializer cannot hold is refused up front, naming the place."""

    async def _seed(self, tenant: Tenant) -> None:
        assert (await tenant.client.put("/v1/accounts/acme", json={})).status_code == 201
        r = await tenant.client.put("/v1/stakeholders/dana", json={"account_id": "acme"})
        assert r.status_code == 201

    async def test_deeply_nested_attributes_are_422(self, tenant: Tenant) -> None:
        deep: dict[str, Any] = {}
        for _ in range(50):
            deep = {"x": deep}
        r = await tenant.client.put("/v1/accounts/acme", json={"attributes": deep})
        body = problem(r, 422)
        assert body["errors"][0]["msg"].startswith("nested deeper than 8 levels: attributes.x")

    async def test_one_unstorable_batch_item_fails_alone(self, tenant: Tenant) -> None:
        await self._seed(tenant)
        raw = (
            '{"responses": ['
            '{"stakeholder_id": "dana", "score": 9, "attributes": {"support": NaN}},'
            '{"stakeholder_id": "dana", "score": 8, "comment": "\\ud800"},'
            '{"stakeholder_id": "dana", "score": 7, "submitted_at": "0001-01-01T00:00:00+05:00"},'
            '{"stakeholder_id": "dana", "score": 6}'
            "]}"
        )
        r = await tenant.client.post(
            "/v1/responses/batch", content=raw, headers={"content-type": "application/json"}
        )
        assert r.status_code == 207, r.text
        results = r.json()["results"]
        assert [x["status"] for x in results] == [422, 422, 422, 201]
        assert [x["problem"]["errors"][0]["loc"] for x in results[:3]] == [
            ["body", "responses", 0],
            ["body", "responses", 1],
            ["body", "responses", 2, "submitted_at"],
        ]
        assert results[0]["problem"]["errors"][0]["msg"] == (
            "numbers must be finite: attributes.support"
        )
        assert results[1]["problem"]["errors"][0]["msg"] == (
            "text must be valid Unicode (no lone surrogates): comment"
        )

    async def test_driver_ratings_are_flat(self, tenant: Tenant) -> None:
        await self._seed(tenant)
        r = await tenant.client.post(
            "/v1/responses",
            json={"stakeholder_id": "dana", "score": 9, "attributes": {"support": {"a": 1}}},
        )
        locs = [e["loc"][:3] for e in problem(r, 422)["errors"]]
        assert locs[0] == ["body", "attributes", "support"]

    @pytest.mark.parametrize(
        "params",
        [
            {"to": "0001-06-01T00:00:00Z"},
            {"from": "0001-01-01T00:00:00+01:00"},
            {"to": "9999-12-31T23:00:00-05:00"},
        ],
    )
    async def test_instants_out_of_range_are_422(
        self, tenant: Tenant, params: dict[str, str]
    ) -> None:
        await self._seed(tenant)
        for path in ("/v1/nps", "/v1/accounts/acme/nps"):
            body = problem(await tenant.client.get(path, params=params), 422)
            assert body["errors"][0]["loc"] == ["query", next(iter(params))]

    async def test_ids_made_only_of_dots_are_refused(self, tenant: Tenant) -> None:
        await self._seed(tenant)
        r = await tenant.client.put("/v1/stakeholders/x", json={"account_id": ".."})
        assert problem(r, 422)["errors"][0]["loc"] == ["body", "account_id"]

    async def test_key_label_longer_than_its_column_is_422(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/v1/api-keys", json={"scopes": ["read"], "label": "x" * 201})
        assert problem(r, 422)["errors"][0]["loc"] == ["body", "label"]
