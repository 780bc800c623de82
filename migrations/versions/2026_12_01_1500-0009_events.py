"""events: the transactional outbox of domain events (webhooks, follow-up cases)

A service writes an event in the transaction of the change it announces, with the job that
dispatches it (app.services.events.emit), so a rolled-back change emits nothing and a committed
one is never lost. Events are kept NPS_EVENT_RETENTION_DAYS for replays, then purged.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("workspace_id", postgresql.UUID(), nullable=False),
        sa.Column("id", postgresql.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_events_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(
        "ix_events_workspace_occurred", "events", ["workspace_id", "occurred_at", "seq"]
    )
    op.create_index("ix_events_occurred_at", "events", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_events_occurred_at", table_name="events")
    op.drop_index("ix_events_workspace_occurred", table_name="events")
    op.drop_table("events")
