"""idempotency_keys: a replay re-reads what the answer showed instead of keeping a copy

An answer that shows personal data (a response with its comment, a public answer, a case note)
is stored as the name of its reader and the id it showed (`reread`, `resource_id`) with no
body, so erasing the person erases what a replay would show: the replay re-reads and answers
410 when it is gone. Answers that show only ids and statuses keep their body as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("idempotency_keys", "body", existing_type=sa.LargeBinary(), nullable=True)
    op.add_column("idempotency_keys", sa.Column("reread", sa.String(length=64), nullable=True))
    op.add_column(
        "idempotency_keys", sa.Column("resource_id", sa.String(length=200), nullable=True)
    )
    op.create_check_constraint(
        op.f("ck_idempotency_keys_body_or_reread"),
        "idempotency_keys",
        "(body IS NULL) = (reread IS NOT NULL AND resource_id IS NOT NULL)",
    )


def downgrade() -> None:
    # A record without a body cannot be replayed by the older code: forget it (the request it
    # answered was done; a retry after the downgrade is a new request).
    op.execute("DELETE FROM idempotency_keys WHERE body IS NULL")
    op.drop_constraint(
        op.f("ck_idempotency_keys_body_or_reread"), "idempotency_keys", type_="check"
    )
    op.drop_column("idempotency_keys", "resource_id")
    op.drop_column("idempotency_keys", "reread")
    op.alter_column("idempotency_keys", "body", existing_type=sa.LargeBinary(), nullable=False)
