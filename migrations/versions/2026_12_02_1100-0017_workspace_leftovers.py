"""events, jobs, idempotency_keys: deleted with their workspace by a trigger, not a foreign key

Every answer appends to all three. Each row's foreign-key check key-share-locked the one
workspace row that every concurrent writer in the workspace locked too: a MultiXact per
concurrent answer on top of the look-up. Their workspace_id always comes from the authenticated
caller. Deleting a workspace still removes their rows: a statement trigger on workspaces deletes
them, naming each deleted workspace in app.workspace_id so that row-level security lets it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("events", "jobs", "idempotency_keys")


def upgrade() -> None:
    for table in TABLES:
        op.drop_constraint(f"fk_{table}_workspace_id_workspaces", table, type_="foreignkey")
    deletes = "\n".join(
        f"        DELETE FROM {table} WHERE workspace_id = gone_id;" for table in TABLES
    )
    op.execute(
        f"""
        CREATE FUNCTION delete_workspace_leftovers() RETURNS trigger
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
    op.execute(
        """
        CREATE TRIGGER workspaces_leftovers AFTER DELETE ON workspaces
        REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
        EXECUTE FUNCTION delete_workspace_leftovers()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER workspaces_leftovers ON workspaces")
    op.execute("DROP FUNCTION delete_workspace_leftovers()")
    for table in TABLES:
        # Rows left by a workspace deleted without the trigger cannot satisfy the key.
        op.execute(
            f"DELETE FROM {table} AS t WHERE t.workspace_id IS NOT NULL "
            "AND NOT EXISTS (SELECT FROM workspaces AS w WHERE w.id = t.workspace_id)"
        )
        op.create_foreign_key(
            f"fk_{table}_workspace_id_workspaces",
            table,
            "workspaces",
            ["workspace_id"],
            ["id"],
            ondelete="CASCADE",
        )
