"""cases: follow-up cases opened by the case rules, with their answers, notes and changes

A case is opened by the worker from a `response.created` event; at most one per stakeholder and
kind (recovery, advocacy) is open at a time, and a response triggers at most one case of each
kind, so a dispatch job that runs twice changes nothing.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 16:01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("stakeholder_id", sa.String(length=128), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("job_level", sa.String(length=32), nullable=False),
        sa.Column("department", sa.String(length=100), nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("sla_hours", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("root_cause", sa.String(length=64), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_action_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(status = 'closed') = (outcome IS NOT NULL AND closed_at IS NOT NULL)",
            name=op.f("ck_cases_closed_has_outcome"),
        ),
        sa.CheckConstraint("kind IN ('recovery', 'advocacy')", name=op.f("ck_cases_kind_known")),
        sa.CheckConstraint("sla_hours BETWEEN 1 AND 8760", name=op.f("ck_cases_sla_hours_range")),
        sa.CheckConstraint(
            "outcome IS NULL"
            " OR (kind = 'recovery'"
            " AND outcome IN ('resolved', 'unresolved', 'no_reply', 'not_actionable'))"
            " OR (kind = 'advocacy'"
            " AND outcome IN ('reference_agreed', 'testimonial', 'declined', 'no_reply'))",
            name=op.f("ck_cases_outcome_fits_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'in_progress', 'closed')", name=op.f("ck_cases_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "stakeholder_id"],
            ["stakeholders.workspace_id", "stakeholders.id"],
            name=op.f("fk_cases_workspace_id_stakeholders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_cases")),
    )
    op.create_index(
        "ix_cases_workspace_account", "cases", ["workspace_id", "account_id"], unique=False
    )
    op.create_index(
        "ix_cases_workspace_stakeholder",
        "cases",
        ["workspace_id", "stakeholder_id", "opened_at"],
        unique=False,
    )
    op.create_index(
        "ix_cases_workspace_updated", "cases", ["workspace_id", "updated_at", "id"], unique=False
    )
    op.create_index(
        "uq_cases_open_per_stakeholder",
        "cases",
        ["workspace_id", "stakeholder_id", "kind"],
        unique=True,
        postgresql_where=sa.text("status <> 'closed'"),
    )
    op.create_table(
        "case_changes",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column(
            "changes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "case_id"],
            ["cases.workspace_id", "cases.id"],
            name=op.f("fk_case_changes_workspace_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "seq", name=op.f("pk_case_changes")),
    )
    op.create_index(
        "ix_case_changes_workspace_case",
        "case_changes",
        ["workspace_id", "case_id", "seq"],
        unique=False,
    )
    op.create_table(
        "case_notes",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "case_id"],
            ["cases.workspace_id", "cases.id"],
            name=op.f("fk_case_notes_workspace_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_case_notes")),
    )
    op.create_index(
        "ix_case_notes_workspace_case",
        "case_notes",
        ["workspace_id", "case_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "case_responses",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("case_id", sa.UUID(), nullable=False),
        sa.Column("response_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column(
            "added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "case_id"],
            ["cases.workspace_id", "cases.id"],
            name=op.f("fk_case_responses_workspace_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "response_id"],
            ["responses.workspace_id", "responses.id"],
            name=op.f("fk_case_responses_workspace_id_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "case_id", "response_id", name=op.f("pk_case_responses")
        ),
        sa.UniqueConstraint(
            "workspace_id",
            "response_id",
            "kind",
            name=op.f("uq_case_responses_workspace_id_response_id_kind"),
        ),
    )


def downgrade() -> None:
    op.drop_table("case_responses")
    op.drop_index("ix_case_notes_workspace_case", table_name="case_notes")
    op.drop_table("case_notes")
    op.drop_index("ix_case_changes_workspace_case", table_name="case_changes")
    op.drop_table("case_changes")
    op.drop_index(
        "uq_cases_open_per_stakeholder",
        table_name="cases",
        postgresql_where=sa.text("status <> 'closed'"),
    )
    op.drop_index("ix_cases_workspace_updated", table_name="cases")
    op.drop_index("ix_cases_workspace_account", table_name="cases")
    op.drop_index("ix_cases_workspace_stakeholder", table_name="cases")
    op.drop_table("cases")
