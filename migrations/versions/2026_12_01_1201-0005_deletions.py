"""deletions: tombstones of deleted accounts, stakeholders and responses, for deletions sync

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


def downgrade() -> None:
    op.drop_index("ix_deletions_deleted_at", table_name="deletions")
    op.drop_index("ix_deletions_workspace_deleted", table_name="deletions")
    op.drop_table("deletions")
