"""account_predictions: the account team's predictions, each PUT a version (the perception gap)

Each row is one version of one author's prediction for one account: the predicted 0-10 score,
optional per-role predictions and a note, stamped with the server's clock (never the caller's),
so that only predictions made before the answers they are compared with can count.

Deleted with the account (and so with the workspace, which cascades to its accounts): not one of
the workspace leftovers of migration 0017. Row-level security like every tenant table (0014).
A prediction is read by GET /v1/perception-gap and the at-risk list (reason `blind_spot`), which
are tagged by the data version: the data-version triggers of 0019 fire on this table too.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKSPACE = "(SELECT NULLIF(current_setting('app.workspace_id', true), '')::uuid)"
TABLE = "account_predictions"
TRIGGERS = (
    ("INSERT", "NEW TABLE AS new_rows", "bump_data_version_new"),
    ("UPDATE", "NEW TABLE AS new_rows", "bump_data_version_new"),
    ("DELETE", "OLD TABLE AS old_rows", "bump_data_version_old"),
)


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("predicted_score", sa.SmallInteger(), nullable=False),
        sa.Column(
            "role_predictions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "predicted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "predicted_score BETWEEN 0 AND 10",
            name=op.f("ck_account_predictions_predicted_score_range"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_account_predictions_version_positive")),
        sa.ForeignKeyConstraint(
            ["workspace_id", "account_id"],
            ["accounts.workspace_id", "accounts.id"],
            name=op.f("fk_account_predictions_workspace_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "account_id", "author", "version", name=op.f("pk_account_predictions")
        ),
    )
    op.create_index(
        "ix_account_predictions_workspace_predicted",
        TABLE,
        ["workspace_id", "predicted_at"],
    )
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {TABLE} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant ON {TABLE} USING (workspace_id = {WORKSPACE})")
    for event, table_ref, function in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER data_version_{event.lower()} AFTER {event} ON {TABLE} "
            f"REFERENCING {table_ref} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


def downgrade() -> None:
    for event, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER data_version_{event.lower()} ON {TABLE}")
    op.drop_index("ix_account_predictions_workspace_predicted", table_name=TABLE)
    op.drop_table(TABLE)
