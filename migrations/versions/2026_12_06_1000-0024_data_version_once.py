"""data_versions: one increment per transaction and workspace, not one per statement

0019's triggers incremented the workspace's data version after every statement that wrote a
row a score reads. An answer is one statement, but it fires two of them (its INSERT, and the
UPDATE that links the previous answer of its stakeholder), and each ran an INSERT ... ON
CONFLICT DO UPDATE on the shard's row: 139 µs of database time each in make bench, the second
one for nothing. A reader only ever sees a transaction's writes together, so one increment per
transaction still makes every committed change move the sum (0019's argument holds: each
committed transaction that wrote adds at least 1).

The trigger remembers, in the transaction-local setting `app.data_version_bumped`, the workspace
it last incremented when every row it counted was of the transaction's `app.workspace_id` (to
which row-level security confines the service's writes); a later statement of the same
transaction acting in the same workspace returns at once. Set with is_local, the setting ends
with the transaction and is undone with a subtransaction that rolls back, as the increment is.
A transaction with no workspace set (migrations, maintenance as the owner) increments at every
statement, as before.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARDS = 64
# (function, transition table, its workspace column), as 0019 made them.
FUNCTIONS = (
    ("bump_data_version_new", "new_rows", "workspace_id"),
    ("bump_data_version_old", "old_rows", "workspace_id"),
    ("bump_data_version_settings", "new_rows", "id"),
)


def _bump(source: str, column: str) -> str:
    """0019's increment, unchanged."""
    return f"""
        INSERT INTO data_versions AS v (workspace_id, shard, version)
        SELECT DISTINCT s.{column}, (pg_backend_pid() % {SHARDS})::smallint, 1 FROM {source} AS s
        WHERE EXISTS (SELECT FROM workspaces AS w WHERE w.id = s.{column})
        ON CONFLICT (workspace_id, shard) DO UPDATE SET version = v.version + 1
    """


def upgrade() -> None:
    for name, source, column in FUNCTIONS:
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE
                acting text := nullif(current_setting('app.workspace_id', true), '');
            BEGIN
                IF acting IS NOT NULL
                   AND current_setting('app.data_version_bumped', true) = acting THEN
                    RETURN NULL;
                END IF;
                {_bump(source, column)};
                -- Only rows of the acting workspace (a role that bypasses row-level security
                -- may write others'): their later statements need no increment.
                IF acting IS NOT NULL AND NOT EXISTS (
                    SELECT FROM {source} AS s WHERE s.{column}::text IS DISTINCT FROM acting
                ) THEN
                    PERFORM set_config('app.data_version_bumped', acting, true);
                END IF;
                RETURN NULL;
            END $$
            """
        )


def downgrade() -> None:
    for name, source, column in FUNCTIONS:
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                {_bump(source, column)};
                RETURN NULL;
            END $$
            """
        )
