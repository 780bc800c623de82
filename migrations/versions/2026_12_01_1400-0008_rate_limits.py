"""rate limits of the public calls (an UNLOGGED table of fixed-window counters) and the index
that answers a CORS preflight: which workspaces list an origin in allowed_origins

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_windows",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name=op.f("pk_rate_limit_windows")),
        prefixes=["UNLOGGED"],
    )
    op.create_index(
        "ix_workspaces_allowed_origins",
        "workspaces",
        [sa.text("(settings -> 'allowed_origins')")],
        postgresql_using="gin",
    )


def downgrade() -> None:
    op.drop_index("ix_workspaces_allowed_origins", table_name="workspaces")
    op.drop_table("rate_limit_windows")
