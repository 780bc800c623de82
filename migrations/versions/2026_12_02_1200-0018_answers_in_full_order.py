"""ix_responses_workspace_submitted keyed in the answers' full order

Keyed (workspace_id, submitted_at, created_at, id), so a page of movements reads a window's
answers newest first without sorting the window.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_responses_workspace_submitted"
INCLUDED = [
    "stakeholder_id",
    "account_id",
    "role",
    "job_level",
    "department",
    "survey",
    "score",
    "superseded_at",
]


def _index(columns: list[str]) -> None:
    op.drop_index(INDEX, table_name="responses")
    op.create_index(
        INDEX,
        "responses",
        columns,
        postgresql_include=INCLUDED,
        postgresql_where=sa.text("NOT excluded"),
    )


def upgrade() -> None:
    _index(["workspace_id", "submitted_at", "created_at", "id"])


def downgrade() -> None:
    _index(["workspace_id", "submitted_at"])
