"""The `nps` command for operators: migrate and say what it did, list workspaces, create and
revoke keys by whatever the operator has at hand (a name, an id, a whole key, a prefix)."""

import asyncio
import csv
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app import migrate
from app.db import session_scope
from app.models import ApiKey, Scope, SurveyResponse, Workspace
from app.services.keys import create_api_key, create_workspace, hash_key, revoke_api_key
from tests.support.processes import run_nps

Sessions = async_sessionmaker[AsyncSession]


async def nps(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_nps, url, *args, **env)


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done


def one_line_error(done: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """The single line a failed command wrote to stderr (and no traceback)."""
    assert done.returncode == status, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@asynccontextmanager
async def migrated(url: str) -> AsyncIterator[Sessions]:
    """The database at head, and sessions on it that really commit."""
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_async_engine(url)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


async def workspace(sessions: Sessions, name: str) -> tuple[Workspace, str]:
    """A workspace and its admin key, in a transaction of its own (so it has its own now())."""
    async with session_scope(sessions) as session:
        return await create_workspace(session, name)


async def key_row(sessions: Sessions, raw: str) -> ApiKey | None:
    async with sessions() as session:
        found: ApiKey | None = await session.scalar(
            select(ApiKey).where(ApiKey.key_hash == hash_key(raw))
        )
        return found


def chain() -> list[tuple[str, str]]:
    """Every migration, base to head, with its description."""
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    return [(s.revision, str(s.doc)) for s in reversed(list(scripts.walk_revisions()))]


class TestMigrate:
    async def test_says_what_it_applied_or_that_there_was_nothing_to_do(
        self, empty_database_url: str
    ) -> None:
        url = empty_database_url
        revisions = chain()
        (previous, _), (head, head_doc) = revisions[-2:]

        done = ok(await nps(url, "migrate"))
        assert done.stdout.splitlines() == [
            f"upgraded from base (no schema) to {head} (head), applying:",
            *(f"  {revision}  {doc}" for revision, doc in revisions),
        ]

        done = ok(await nps(url, "migrate"))
        assert done.stdout.splitlines() == [f"already at {head} (head); nothing to do"]

        done = ok(await nps(url, "migrate", "-1"))
        assert done.stdout.splitlines() == [
            f"downgraded from {head} (head) to {previous}, reverting:",
            f"  {head}  {head_doc}",
        ]

        done = ok(await nps(url, "migrate"))
        assert done.stdout.splitlines() == [
            f"upgraded from {previous} to {head} (head), applying:",
            f"  {head}  {head_doc}",
        ]

    async def test_an_unknown_revision_or_an_unreachable_database_is_one_line(
        self, empty_database_url: str
    ) -> None:
        line = one_line_error(await nps(empty_database_url, "migrate", "nonsense"))
        assert line.startswith("nps: "), line
        assert "'nonsense'" in line, line

        line = one_line_error(await nps("postgresql://nobody@127.0.0.1:1/nothing", "migrate"))
        assert line.startswith("nps: the database failed: "), line


class TestWorkspaces:
    async def test_lists_ids_names_and_active_keys_as_json_or_a_table(
        self, empty_database_url: str
    ) -> None:
        url = empty_database_url
        async with migrated(url) as sessions:
            assert json.loads(ok(await nps(url, "workspaces", "--json")).stdout) == []

            globex, _ = await workspace(sessions, "Globex")
            locked_out, locked_out_admin = await workspace(sessions, "Initech")
            async with session_scope(sessions) as session:
                await create_api_key(session, globex.id, scopes=[Scope.READ])
                write, _ = await create_api_key(session, globex.id, scopes=[Scope.WRITE])
                await revoke_api_key(session, prefix=write.prefix)
                await revoke_api_key(session, prefix=locked_out_admin[:12], force=True)

            listed = json.loads(ok(await nps(url, "workspaces", "--json")).stdout)
            table = ok(await nps(url, "workspaces")).stdout.splitlines()

        def created(w: Workspace) -> str:
            return w.created_at.astimezone(UTC).isoformat(timespec="seconds")

        assert listed == [
            {
                "id": str(globex.id),
                "name": "Globex",
                "created_at": created(globex),
                "active_keys": 2,
                "active_admin_keys": 1,
            },
            {
                "id": str(locked_out.id),
                "name": "Initech",
                "created_at": created(locked_out),
                "active_keys": 0,
                "active_admin_keys": 0,
            },
        ]
        assert [line.split() for line in table] == [
            ["ID", "NAME", "CREATED", "KEYS", "ADMIN", "KEYS"],
            [str(globex.id), "Globex", created(globex), "2", "1"],
            [str(locked_out.id), "Initech", created(locked_out), "0", "0"],
        ]


class TestCreateKey:
    async def test_for_a_workspace_named_or_numbered(self, empty_database_url: str) -> None:
        url = empty_database_url
        async with migrated(url) as sessions:
            globex, _ = await workspace(sessions, "Globex")
            await workspace(sessions, "Acme")
            acme, _ = await workspace(sessions, "Acme")

            by_name = ok(
                await nps(
                    url,
                    "create-key",
                    "--workspace",
                    "Globex",
                    "--scopes",
                    "read,write",
                    "--label",
                    "crm sync",
                )
            )
            by_id = ok(
                await nps(url, "create-key", "--workspace", str(acme.id), "--scope", "admin")
            )

            made = [
                await key_row(sessions, d.stdout.strip().splitlines()[-1]) for d in (by_name, by_id)
            ]
        assert [(k.workspace_id, k.scopes, k.label) for k in made if k is not None] == [
            (globex.id, ["read", "write"], "crm sync"),
            (acme.id, ["admin"], None),
        ]
        assert f"of workspace {globex.id} (Globex)" in by_name.stderr
        assert f"of workspace {acme.id} (Acme)" in by_id.stderr

    async def test_an_ambiguous_or_unknown_workspace_is_refused(
        self, empty_database_url: str
    ) -> None:
        url = empty_database_url
        async with migrated(url) as sessions:
            first, _ = await workspace(sessions, "Acme")
            second, _ = await workspace(sessions, "Acme")
            nobody = str(uuid.uuid4())

            ambiguous = await nps(url, "create-key", "--workspace", "Acme", "--scope", "read")
            unknown = await nps(url, "create-key", "--workspace", "Nobody", "--scope", "read")
            unknown_id = await nps(url, "create-key", "--workspace", nobody, "--scope", "read")
            bad_scope = await nps(url, "create-key", "--workspace", "Acme", "--scope", "root")

            async with sessions() as session:
                keys = await session.scalar(select(func.count()).select_from(ApiKey))
        assert one_line_error(ambiguous) == (
            f"nps: 2 workspaces are named 'Acme': {first.id}, {second.id}; pass one of these ids"
        )
        assert one_line_error(unknown) == (
            "nps: no workspace has the id or name 'Nobody'; `nps workspaces` lists them"
        )
        assert one_line_error(unknown_id) == (
            f"nps: no workspace has the id or name '{nobody}'; `nps workspaces` lists them"
        )
        assert bad_scope.returncode == 2
        assert "'root': the scopes are read, write, admin" in bad_scope.stderr
        assert keys == 2  # the two admin keys the workspaces were made with


class TestRevokeKey:
    async def test_by_whole_key_or_prefix_and_the_last_admin_key_only_with_force(
        self, empty_database_url: str
    ) -> None:
        url = empty_database_url
        async with migrated(url) as sessions:
            globex, admin = await workspace(sessions, "Globex")
            async with session_scope(sessions) as session:
                _, read = await create_api_key(session, globex.id, scopes=[Scope.READ])
            named = f"workspace {globex.id} (Globex)"

            done = ok(await nps(url, "revoke-key", read))
            assert done.stderr == f"revoked {read[:12]} of {named}\n"
            done = ok(await nps(url, "revoke-key", read[:12]))
            assert done.stderr.startswith(f"{read[:12]} was already revoked on ")

            refused = one_line_error(await nps(url, "revoke-key", admin[:12]))
            assert refused == (
                f"nps: {admin[:12]} is the last active admin key of {named}; create another "
                f"first (`nps create-key --workspace {globex.id} --scope admin`), or pass --force "
                "to revoke it all the same"
            )
            still = await key_row(sessions, admin)
            assert still is not None
            assert still.revoked_at is None

            done = ok(await nps(url, "revoke-key", "--force", admin))
            assert done.stderr.splitlines() == [
                f"revoked {admin[:12]} of {named}",
                f"{named} has no active admin key now; "
                f"`nps create-key --workspace {globex.id} --scope admin` makes one",
            ]
            gone = await key_row(sessions, admin)
            assert gone is not None
            assert gone.revoked_at is not None

            unknown_key = await nps(url, "revoke-key", "nps_" + "x" * 43)
            unknown_prefix = await nps(url, "revoke-key", "nps_nothing")
        assert one_line_error(unknown_key) == (
            "nps: no API key has this secret; pass the whole key or its first 12 characters"
        )
        assert one_line_error(unknown_prefix) == "nps: no API key with prefix 'nps_nothing'"


class TestImport:
    async def test_imports_a_file_prints_its_summary_and_writes_the_rejects(
        self, empty_database_url: str, tmp_path: Path
    ) -> None:
        url = empty_database_url
        async with migrated(url) as sessions:
            acme, _ = await workspace(sessions, "Acme")
            given = tmp_path / "answers.csv"
            given.write_text(
                "stakeholder_id,account_id,score,submitted_at\r\n"
                "dana,acme,9,2026-01-02T10:00:00Z\r\n"
                "erin,acme,9.5,2026-01-02T10:00:00Z\r\n"
                "finn,acme,3,2026-01-03T10:00:00Z\r\n",
                encoding="utf-8",
            )
            done = ok(await nps(url, "import", str(given), "--kind", "responses"))
            again = ok(await nps(url, "import", str(given), "--kind", "responses"))
            async with sessions() as session:
                scores = sorted(
                    (
                        await session.scalars(
                            select(SurveyResponse.score).where(
                                SurveyResponse.workspace_id == acme.id
                            )
                        )
                    ).all()
                )
        assert scores == [3, 9]
        assert "succeeded" in done.stdout
        assert "rows read 3, stored 2, duplicates 0, rejected 1" in done.stdout
        rejects = tmp_path / "answers.csv.rejects.csv"
        assert f"rejected rows: {rejects}" in done.stdout
        with rejects.open(encoding="utf-8", newline="") as written:
            rows = list(csv.reader(written))
        assert rows[0] == ["row", "field", "reason", "raw"]
        assert rows[1][:2] == ["2", "score"]
        assert "nothing stored again" in again.stdout
