"""deletions: tombstones of deleted accounts, stakeholders and responses, for deletions sync

Triggers write them: one statement-level AFTER DELETE trigger per table, reading the deleted rows
from its transition table, so every path (a service's DELETE, a foreign key's ON DELETE CASCADE,
a future import or cleanup) is caught, and a large account is one INSERT per table, not one per
row. A workspace being deleted writes none (its tombstones go with it).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOMBSTONED = (("accounts", "account"), ("stakeholders", "stakeholder"), ("responses", "response"))

# Ids only (and a response's external_id): never a name, email or comment. The EXISTS skips the
# rows of a workspace that is itself being deleted in this statement: the cascade removes its
# tombstones (before or after this runs), and inserting one would break the foreign key.
RECORD_DELETIONS = """
CREATE FUNCTION record_deletions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_ARGV[0] = 'response' THEN
        INSERT INTO deletions (workspace_id, kind, object_id, external_id)
        SELECT g.workspace_id, 'response', g.id::text, g.external_id
        FROM gone AS g
        WHERE EXISTS (SELECT FROM workspaces AS w WHERE w.id = g.workspace_id)
        ORDER BY g.id;
    ELSE
        INSERT INTO deletions (workspace_id, kind, object_id)
        SELECT g.workspace_id, TG_ARGV[0], g.id
        FROM gone AS g
        WHERE EXISTS (SELECT FROM workspaces AS w WHERE w.id = g.workspace_id)
        ORDER BY g.id;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "deletions",
        sa.Column("workspace_id", postgresql.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.String(length=128), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column(
            "deleted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('account', 'stakeholder', 'response')", name=op.f("ck_deletions_kind_known")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_deletions_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "seq", name=op.f("pk_deletions")),
    )
    op.create_index(
        "ix_deletions_workspace_deleted", "deletions", ["workspace_id", "deleted_at", "seq"]
    )
    op.create_index("ix_deletions_deleted_at", "deletions", ["deleted_at"])
    op.execute(RECORD_DELETIONS)
    for table, kind in TOMBSTONED:
        op.execute(
            f"CREATE TRIGGER {table}_tombstones AFTER DELETE ON {table} "
            "REFERENCING OLD TABLE AS gone FOR EACH STATEMENT "
            f"EXECUTE FUNCTION record_deletions('{kind}')"
        )


def downgrade() -> None:
    for table, _ in TOMBSTONED:
        op.execute(f"DROP TRIGGER {table}_tombstones ON {table}")
    op.execute("DROP FUNCTION record_deletions()")
    op.drop_index("ix_deletions_deleted_at", table_name="deletions")
    op.drop_index("ix_deletions_workspace_deleted", table_name="deletions")
    op.drop_table("deletions")
