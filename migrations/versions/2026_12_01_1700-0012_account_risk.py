"""account_risk: each account's at-risk state as the worker last assessed it

The worker reassesses an account after each of its response events and emits
`account.risk_changed` only when the account entered or left the list, comparing against this
row, which it locks first: a repeated dispatch finds the state it wrote and emits nothing.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_risk",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("at_risk", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "reasons",
            postgresql.ARRAY(sa.String(length=64)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("change_event_id", sa.UUID(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "at_risk = (cardinality(reasons) > 0)",
            name=op.f("ck_account_risk_at_risk_has_reasons"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["accounts.workspace_id", "accounts.id"],
            name=op.f("fk_account_risk_workspace_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "account_id", name=op.f("pk_account_risk")),
    )


def downgrade() -> None:
    op.drop_table("account_risk")
