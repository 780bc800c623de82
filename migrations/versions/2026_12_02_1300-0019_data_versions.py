"""data_versions: a per-workspace counter that every write a score can depend on increments

A report's ETag (app.api.report_tags) is derived from the workspace's data version, the sum of
its rows here. Statement-level triggers on the tables a score or an analytics report reads
(responses, stakeholders, accounts, cases, surveys, and the workspace's settings) increment it
in the writing transaction, so it cannot be forgotten by a new write path and it commits or vanishes
with the change.

Sharded: the trigger increments the row of shard `pg_backend_pid() % 64`, so concurrent answers
(each connection is one backend) rarely wait on one row lock; the workspace's version is the
sum of its shards, read in one statement by the primary key.

No foreign key to workspaces, as for events, jobs and idempotency records (migration 0017): a
key check per answer would key-share-lock the workspace's row, and deleting a workspace
cascades to its answers, whose trigger then bumped the version of a workspace already gone (a
key violation). The trigger skips a workspace that is gone (deleted in its own transaction), and
the workspace trigger of 0017 deletes the rows bumped before.

An increment, not a max of ids: ids (sequences, timestamps) are handed out before commit, so
transactions commit out of order and a reader who saw max = 10 can later see the transaction
holding 9 commit while the max stays 10, a stale tag over changed data. Each committed
transaction adds at least 1 to the sum, whatever its order, so any snapshot that sees one more
commit sees a larger sum.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKSPACE = "(SELECT NULLIF(current_setting('app.workspace_id', true), '')::uuid)"
SHARDS = 64
# The tables whose rows a score, a breakdown, a trend, coverage, movements, at-risk or the key
# drivers (a survey's attribute catalog) read.
TABLES = ("responses", "stakeholders", "accounts", "cases", "surveys")
# What 0017's workspace trigger deletes, before and after this revision.
LEFTOVERS_BEFORE = ("events", "jobs", "idempotency_keys")
LEFTOVERS = (*LEFTOVERS_BEFORE, "data_versions")


def _leftovers(tables: Sequence[str]) -> None:
    """0017's delete_workspace_leftovers(), deleting from `tables`."""
    deletes = "\n".join(
        f"        DELETE FROM {table} WHERE workspace_id = gone_id;" for table in tables
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION delete_workspace_leftovers() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            gone_id uuid;
            acting text := current_setting('app.workspace_id', true);
        BEGIN
            FOR gone_id IN SELECT id FROM gone LOOP
                PERFORM set_config('app.workspace_id', gone_id::text, true);
{deletes}
            END LOOP;
            PERFORM set_config('app.workspace_id', coalesce(acting, ''), true);
            RETURN NULL;
        END
        $$
        """
    )


def _bump(source: str, column: str) -> str:
    return f"""
        INSERT INTO data_versions AS v (workspace_id, shard, version)
        SELECT DISTINCT s.{column}, (pg_backend_pid() % {SHARDS})::smallint, 1 FROM {source} AS s
        WHERE EXISTS (SELECT FROM workspaces AS w WHERE w.id = s.{column})
        ON CONFLICT (workspace_id, shard) DO UPDATE SET version = v.version + 1
    """


def _function(name: str, body: str) -> None:
    op.execute(
        f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {body};
            RETURN NULL;
        END $$
        """
    )


def upgrade() -> None:
    op.create_table(
        "data_versions",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "shard", name=op.f("pk_data_versions")),
    )
    op.execute("ALTER TABLE data_versions ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE data_versions FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant ON data_versions USING (workspace_id = {WORKSPACE})")
    # A trigger with transition tables fires for one event only: one function reads the new
    # rows (INSERT, UPDATE: workspace_id never changes), one the old (DELETE).
    _function("bump_data_version_new", _bump("new_rows", "workspace_id"))
    _function("bump_data_version_old", _bump("old_rows", "workspace_id"))
    _function("bump_data_version_settings", _bump("new_rows", "id"))
    for table in TABLES:
        for event, table_ref, function in (
            ("INSERT", "NEW TABLE AS new_rows", "bump_data_version_new"),
            ("UPDATE", "NEW TABLE AS new_rows", "bump_data_version_new"),
            ("DELETE", "OLD TABLE AS old_rows", "bump_data_version_old"),
        ):
            op.execute(
                f"CREATE TRIGGER data_version_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {table_ref} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    op.execute(
        "CREATE TRIGGER data_version_settings AFTER UPDATE ON workspaces "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION bump_data_version_settings()"
    )
    _leftovers(LEFTOVERS)


def downgrade() -> None:
    _leftovers(LEFTOVERS_BEFORE)
    op.execute("DROP TRIGGER data_version_settings ON workspaces")
    for table in TABLES:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER data_version_{event} ON {table}")
    for name in ("new", "old", "settings"):
        op.execute(f"DROP FUNCTION bump_data_version_{name}()")
    op.drop_table("data_versions")
