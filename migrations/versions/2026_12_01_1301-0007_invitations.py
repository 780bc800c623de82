"""invitations (single-use tokens, fatigue-rule suppressions) and unsubscribes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 13:01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _stamp(name: str, *, nullable: bool = True) -> sa.Column[object]:
    if nullable:
        return sa.Column(name, sa.DateTime(timezone=True), nullable=True)
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("workspace_id", postgresql.UUID(), nullable=False),
        sa.Column("id", postgresql.UUID(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("stakeholder_id", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("survey", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="issued", nullable=False),
        sa.Column("suppression_rule", sa.String(length=64), nullable=True),
        _stamp("suppressed_until"),
        _stamp("expires_at"),
        _stamp("opened_at"),
        _stamp("answered_at"),
        _stamp("dismissed_at"),
        _stamp("revoked_at"),
        sa.Column("response_id", postgresql.UUID(), nullable=True),
        _stamp("created_at", nullable=False),
        _stamp("updated_at", nullable=False),
        sa.CheckConstraint(
            "status IN ('issued', 'opened', 'answered', 'dismissed', 'expired', 'revoked', "
            "'suppressed')",
            name=op.f("ck_invitations_status_known"),
        ),
        sa.CheckConstraint(
            "channel IN ('email', 'link', 'widget')", name=op.f("ck_invitations_channel_known")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "stakeholder_id"],
            ["stakeholders.workspace_id", "stakeholders.id"],
            name=op.f("fk_invitations_workspace_id_stakeholders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )
    op.create_index(
        "ix_invitations_workspace_stakeholder",
        "invitations",
        ["workspace_id", "stakeholder_id", "created_at"],
    )
    op.create_index(
        "ix_invitations_workspace_account_survey",
        "invitations",
        ["workspace_id", "account_id", "survey"],
    )
    op.create_index(
        "ix_invitations_workspace_updated", "invitations", ["workspace_id", "updated_at", "id"]
    )
    op.create_table(
        "unsubscribes",
        sa.Column("workspace_id", postgresql.UUID(), nullable=False),
        sa.Column("stakeholder_id", sa.String(length=128), nullable=False),
        _stamp("unsubscribed_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "stakeholder_id"],
            ["stakeholders.workspace_id", "stakeholders.id"],
            name=op.f("fk_unsubscribes_workspace_id_stakeholders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "stakeholder_id", name=op.f("pk_unsubscribes")),
    )


def downgrade() -> None:
    op.drop_table("unsubscribes")
    op.drop_index("ix_invitations_workspace_updated", table_name="invitations")
    op.drop_index("ix_invitations_workspace_account_survey", table_name="invitations")
    op.drop_index("ix_invitations_workspace_stakeholder", table_name="invitations")
    op.drop_table("invitations")
