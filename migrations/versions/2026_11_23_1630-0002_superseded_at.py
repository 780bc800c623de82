"""superseded_at: each answer links to its stakeholder's next one, for fast latest-per-stakeholder

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns scores are counted and cut by, carried in the covering indexes (a copy of
# app.models.SCORE_COLUMNS as of this revision: a migration never imports the live models).
SCORE_COLUMNS = [
    "stakeholder_id",
    "account_id",
    "role",
    "job_level",
    "department",
    "survey",
    "score",
]


def upgrade() -> None:
    op.add_column(
        "responses",
        sa.Column(
            "superseded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("'infinity'"),
            nullable=False,
        ),
    )
    # Link the answers already stored, in the order every score uses.
    op.execute(
        """
        UPDATE responses AS r SET superseded_at = chain.next
        FROM (
            SELECT workspace_id, id,
                   coalesce(lead(submitted_at) OVER (
                       PARTITION BY workspace_id, stakeholder_id
                       ORDER BY submitted_at, created_at, id
                   ), 'infinity') AS next
            FROM responses WHERE NOT excluded
        ) AS chain
        WHERE r.workspace_id = chain.workspace_id AND r.id = chain.id
          AND r.superseded_at <> chain.next
        """
    )
    op.drop_index("ix_responses_workspace_stakeholder_submitted", table_name="responses")
    op.drop_index("ix_responses_workspace_submitted", table_name="responses")
    op.create_index(
        "ix_responses_workspace_submitted",
        "responses",
        ["workspace_id", "submitted_at"],
        postgresql_include=[*SCORE_COLUMNS, "superseded_at"],
        postgresql_where=sa.text("NOT excluded"),
    )
    op.create_index(
        "ix_responses_workspace_stakeholder_superseded",
        "responses",
        ["workspace_id", "stakeholder_id", "superseded_at"],
    )
    op.create_index(
        "ix_responses_latest",
        "responses",
        ["workspace_id", "superseded_at", "submitted_at"],
        postgresql_include=SCORE_COLUMNS,
        postgresql_where=sa.text("NOT excluded"),
    )


def downgrade() -> None:
    op.drop_index("ix_responses_latest", table_name="responses")
    op.drop_index("ix_responses_workspace_stakeholder_superseded", table_name="responses")
    op.drop_index("ix_responses_workspace_submitted", table_name="responses")
    op.create_index(
        "ix_responses_workspace_submitted", "responses", ["workspace_id", "submitted_at"]
    )
    op.create_index(
        "ix_responses_workspace_stakeholder_submitted",
        "responses",
        ["workspace_id", "stakeholder_id", "submitted_at"],
    )
    op.drop_column("responses", "superseded_at")
