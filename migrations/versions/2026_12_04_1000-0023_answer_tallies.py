"""answer_tallies and tally_dirt: pre-counted calendar buckets for trends (issue 12)

A trend by month over two years read every answer of the two years (a million at the bench's
scale). `answer_tallies` holds, per UTC week and UTC month, the number of answers of each
(role, job level, score) and how many of them were their stakeholder's latest in the week or
month, in the quarter and in the year holding it (an answer is its stakeholder's latest in a
bucket when its superseded_at is at or after the bucket's end; months nest in quarters and
years, so the month's rows answer those too). app.services.tallies reads them.

`tally_dirt` says which rows are stale: statement triggers on responses add the UTC day of every
answer inserted, deleted, or updated in what a tally counts (its score, role, job level,
exclusion or chain link), in the writing transaction, so no write path can forget it. A bucket
with no dirty day is exact; a dirty one is counted from the answers, and the worker's
`tallies.fold` recounts it and deletes the dirt it saw. The rule that keeps it exact: dirt is
deleted before the recount reads the answers, so a change committed meanwhile either is in the
recount or leaves its own dirt behind.

No foreign key to workspaces, as for data_versions (0019): every answer appends to tally_dirt,
and a key check would key-share-lock the workspace's row. The workspace trigger of 0017 deletes
both tables' rows, and the delete trigger skips a workspace that is gone.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKSPACE = "(SELECT NULLIF(current_setting('app.workspace_id', true), '')::uuid)"
LEFTOVERS_BEFORE = ("events", "jobs", "idempotency_keys", "data_versions")
LEFTOVERS = (*LEFTOVERS_BEFORE, "tally_dirt", "answer_tallies")
DAY = "(({alias}.submitted_at AT TIME ZONE 'UTC')::date)"
# What a tally counts of an answer.
COUNTED = ("excluded", "superseded_at", "score", "role", "job_level", "submitted_at")


def _leftovers(tables: Sequence[str]) -> None:
    """0017's delete_workspace_leftovers(), deleting from `tables`."""
    deletes = "\n".join(
        f"        DELETE FROM {table} WHERE workspace_id = gone_id;" for table in tables
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION delete_workspace_leftovers() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            gone_id uuid;
            acting text := current_setting('app.workspace_id', true);
        BEGIN
            FOR gone_id IN SELECT id FROM gone LOOP
                PERFORM set_config('app.workspace_id', gone_id::text, true);
{deletes}
            END LOOP;
            PERFORM set_config('app.workspace_id', coalesce(acting, ''), true);
            RETURN NULL;
        END
        $$
        """
    )


def _function(name: str, body: str) -> None:
    op.execute(
        f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {body};
            RETURN NULL;
        END $$
        """
    )


def upgrade() -> None:
    op.create_table(
        "answer_tallies",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("job_level", sa.String(length=32), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.Column("latest", sa.Integer(), nullable=False),
        sa.Column("latest_quarter", sa.Integer(), nullable=False),
        sa.Column("latest_year", sa.Integer(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_tallies")),
        sa.CheckConstraint("grain IN ('week', 'month')", name=op.f("ck_answer_tallies_grain")),
    )
    op.create_index(
        "ix_answer_tallies_bucket", "answer_tallies", ["workspace_id", "grain", "bucket"]
    )
    op.create_table(
        "tally_dirt",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tally_dirt")),
    )
    op.create_index("ix_tally_dirt_day", "tally_dirt", ["workspace_id", "day"])
    for table in ("answer_tallies", "tally_dirt"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant ON {table} USING (workspace_id = {WORKSPACE})")

    _function(
        "tally_dirt_inserted",
        "INSERT INTO tally_dirt (workspace_id, day) "
        f"SELECT DISTINCT n.workspace_id, {DAY.format(alias='n')} FROM new_rows AS n "
        "WHERE NOT n.excluded",
    )
    _function(
        "tally_dirt_deleted",
        "INSERT INTO tally_dirt (workspace_id, day) "
        f"SELECT DISTINCT o.workspace_id, {DAY.format(alias='o')} FROM old_rows AS o "
        "WHERE NOT o.excluded AND EXISTS (SELECT FROM workspaces AS w WHERE w.id = o.workspace_id)",
    )
    old = ", ".join(f"o.{c}" for c in COUNTED)
    new = ", ".join(f"n.{c}" for c in COUNTED)
    _function(
        "tally_dirt_updated",
        "INSERT INTO tally_dirt (workspace_id, day) "
        "SELECT DISTINCT c.workspace_id, c.day FROM old_rows AS o "
        "JOIN new_rows AS n ON n.workspace_id = o.workspace_id AND n.id = o.id "
        f"CROSS JOIN LATERAL (VALUES (o.workspace_id, {DAY.format(alias='o')}), "
        f"(n.workspace_id, {DAY.format(alias='n')})) AS c (workspace_id, day) "
        f"WHERE (NOT o.excluded OR NOT n.excluded) AND ({old}) IS DISTINCT FROM ({new})",
    )
    op.execute(
        "CREATE TRIGGER tally_dirt_insert AFTER INSERT ON responses "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION tally_dirt_inserted()"
    )
    op.execute(
        "CREATE TRIGGER tally_dirt_delete AFTER DELETE ON responses "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION tally_dirt_deleted()"
    )
    op.execute(
        "CREATE TRIGGER tally_dirt_update AFTER UPDATE ON responses "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION tally_dirt_updated()"
    )
    # Every day that has answers already is dirty: the first fold counts them. Workspace by
    # workspace, as row-level security binds the tables' owner too.
    op.execute(
        f"""
        DO $$
        DECLARE
            ws uuid;
        BEGIN
            FOR ws IN SELECT id FROM workspaces LOOP
                PERFORM set_config('app.workspace_id', ws::text, true);
                INSERT INTO tally_dirt (workspace_id, day)
                SELECT DISTINCT r.workspace_id, {DAY.format(alias="r")} FROM responses AS r
                WHERE r.workspace_id = ws AND NOT r.excluded;
            END LOOP;
            PERFORM set_config('app.workspace_id', '', true);
        END $$
        """
    )
    _leftovers(LEFTOVERS)


def downgrade() -> None:
    _leftovers(LEFTOVERS_BEFORE)
    for event in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER tally_dirt_{event} ON responses")
    for name in ("inserted", "deleted", "updated"):
        op.execute(f"DROP FUNCTION tally_dirt_{name}()")
    op.drop_table("tally_dirt")
    op.drop_table("answer_tallies")
