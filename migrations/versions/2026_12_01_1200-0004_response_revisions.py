"""response_revisions: every correction of a stored response (who, when, what changed)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "response_revisions",
        sa.Column("workspace_id", postgresql.UUID(), nullable=False),
        sa.Column("response_id", postgresql.UUID(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(
            "revision >= 2", name=op.f("ck_response_revisions_revision_after_original")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "response_id"],
            ["responses.workspace_id", "responses.id"],
            name=op.f("fk_response_revisions_workspace_id_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "response_id", "revision", name=op.f("pk_response_revisions")
        ),
    )


def downgrade() -> None:
    op.drop_table("response_revisions")
