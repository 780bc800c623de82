"""imports: uploaded files of accounts, stakeholders or responses, run as worker jobs

`imports` holds each upload and its progress; `import_chunks` the file's bytes, in order,
until the worker has read them (PostgreSQL is the only state: no file waits on a web
process's disk); `import_errors` each rejected row with the row as it was sent, naming the
stakeholder, account and email it is about so that an erasure reaches it. All three go with
their workspace (foreign keys, ON DELETE CASCADE) and take the row-level security policy of
migration 0014.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKSPACE = "(SELECT NULLIF(current_setting('app.workspace_id', true), '')::uuid)"
TABLES = ("imports", "import_chunks", "import_errors")


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("workspace_id", postgresql.UUID(), nullable=False),
        sa.Column("id", postgresql.UUID(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), server_default="queued", nullable=False),
        sa.Column("preset", sa.String(32), nullable=True),
        sa.Column(
            "mapping",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("file_name", sa.String(300), nullable=True),
        sa.Column("sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("duplicate_of", postgresql.UUID(), nullable=True),
        sa.Column("rows_read", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_stored", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_duplicate", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_rejected", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "kind IN ('accounts', 'stakeholders', 'responses')", name=op.f("ck_imports_kind_known")
        ),
        sa.CheckConstraint("format IN ('csv', 'ndjson')", name=op.f("ck_imports_format_known")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name=op.f("ck_imports_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_imports_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_imports")),
    )
    op.create_index("ix_imports_workspace_sha256", "imports", ["workspace_id", "sha256"])
    op.create_index("ix_imports_workspace_created", "imports", ["workspace_id", "created_at", "id"])
    op.create_table(
        "import_chunks",
        sa.Column("workspace_id", postgresql.UUID(), nullable=False),
        sa.Column("import_id", postgresql.UUID(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "import_id"],
            ["imports.workspace_id", "imports.id"],
            name=op.f("fk_import_chunks_workspace_id_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "import_id", "seq", name=op.f("pk_import_chunks")),
    )
    op.create_table(
        "import_errors",
        sa.Column("workspace_id", postgresql.UUID(), nullable=False),
        sa.Column("import_id", postgresql.UUID(), nullable=False),
        sa.Column("row_number", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("field", sa.String(300), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("stakeholder_id", sa.String(128), nullable=True),
        sa.Column("account_id", sa.String(128), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id", "import_id"],
            ["imports.workspace_id", "imports.id"],
            name=op.f("fk_import_errors_workspace_id_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "import_id", "row_number", "seq", name=op.f("pk_import_errors")
        ),
    )
    op.create_index(
        "ix_import_errors_stakeholder", "import_errors", ["workspace_id", "stakeholder_id"]
    )
    op.create_index("ix_import_errors_account", "import_errors", ["workspace_id", "account_id"])
    op.create_index("ix_import_errors_email", "import_errors", ["workspace_id", "email"])
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant ON {table} USING (workspace_id = {WORKSPACE})")


def downgrade() -> None:
    op.drop_table("import_errors")
    op.drop_table("import_chunks")
    op.drop_table("imports")
