"""answer_tallies and tally_deltas: pre-counted calendar buckets for trends (issue 12)

A trend by month over two years read every answer of the two years (a million at the bench's
scale). `answer_tallies` holds, per UTC week and UTC month, the number of answers of each
(role, job level, score) and how many of them were their stakeholder's latest in the week or
month, in the quarter and in the year holding it (an answer is its stakeholder's latest in a
bucket when its superseded_at is at or after the bucket's end; months nest in quarters and
years, so the month's rows answer those too). app.services.tallies reads them.

`tally_deltas` holds what changed since: statement triggers on responses add, in the writing
transaction (so no write path can forget it), +1 for every counted answer as it is now and -1
for it as it was, whenever an answer is inserted, deleted, or updated in what a tally counts
(its score, role, job level, exclusion or chain link). A reader adds the pending deltas to the
tallies in the same statement, so a count is exact at its snapshot whatever the worker has
done; the worker's `tallies.fold` moves the deltas into the tallies (deleting them and adding
their sums in one statement).

No foreign key to workspaces, as for data_versions (0019): every answer appends to
tally_deltas, and a key check would key-share-lock the workspace's row. The workspace trigger
of 0017 deletes both tables' rows, and the delete trigger skips a workspace that is gone.

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
LEFTOVERS = (*LEFTOVERS_BEFORE, "tally_deltas", "answer_tallies")
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


def _delta(source: str, sign: int, where: str) -> str:
    return (
        "INSERT INTO tally_deltas (workspace_id, submitted_at, superseded_at, role, job_level, "
        f"score, sign) SELECT s.workspace_id, s.submitted_at, s.superseded_at, s.role, "
        f"s.job_level, s.score, {sign} FROM {source} WHERE NOT s.excluded{where}"
    )


def _utc(grain: str, column: str, step: str | None = None) -> str:
    """The UTC start of the `grain` holding `column` (or of the one `step` later)."""
    local = f"date_trunc('{grain}', {column} AT TIME ZONE 'UTC')"
    return (
        f"(({local} + interval '{step}') AT TIME ZONE 'UTC')"
        if step
        else f"({local} AT TIME ZONE 'UTC')"
    )


# The tallies of each grain from rows of (workspace_id, submitted_at, superseded_at, role,
# job_level, score, sign). app.services.tallies folds deltas with the same expressions.
def tally_rows(source: str, grain: str) -> str:
    def latest_in(of: str, step: str) -> str:
        end = _utc(of, "submitted_at", step)
        return f"coalesce(sum(sign) FILTER (WHERE superseded_at >= {end}), 0)"

    later = "0, 0"
    if grain == "month":
        later = f"{latest_in('quarter', '3 months')}, {latest_in('year', '1 year')}"
    return (
        f"SELECT workspace_id, '{grain}', {_utc(grain, 'submitted_at')} AS bucket, "
        f"role, job_level, score, sum(sign), {latest_in(grain, '1 ' + grain)}, {later} "
        f"FROM {source} GROUP BY workspace_id, bucket, role, job_level, score"
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
        sa.PrimaryKeyConstraint(
            "workspace_id",
            "grain",
            "bucket",
            "role",
            "job_level",
            "score",
            name=op.f("pk_answer_tallies"),
        ),
        sa.CheckConstraint("grain IN ('week', 'month')", name=op.f("ck_answer_tallies_grain")),
    )
    op.create_table(
        "tally_deltas",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("job_level", sa.String(length=32), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("sign", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_tally_deltas")),
    )
    op.create_index("ix_tally_deltas_submitted", "tally_deltas", ["workspace_id", "submitted_at"])
    # Every fold deletes what the answers since the last one inserted: vacuumed after 10,000
    # dead rows however large the table, as readers scan the pending deltas' index range and a
    # bulk load's million deleted deltas slowed a trend from 20 to 112 ms until it was.
    op.execute(
        "ALTER TABLE tally_deltas SET (autovacuum_vacuum_scale_factor = 0, "
        "autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_insert_scale_factor = 0, "
        "autovacuum_vacuum_insert_threshold = 10000)"
    )
    for table in ("answer_tallies", "tally_deltas"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant ON {table} USING (workspace_id = {WORKSPACE})")

    _function("tally_deltas_inserted", _delta("new_rows AS s", 1, ""))
    _function(
        "tally_deltas_deleted",
        _delta(
            "old_rows AS s",
            -1,
            " AND EXISTS (SELECT FROM workspaces AS w WHERE w.id = s.workspace_id)",
        ),
    )
    old = ", ".join(f"o.{c}" for c in COUNTED)
    new = ", ".join(f"n.{c}" for c in COUNTED)
    changed = (
        "old_rows AS o JOIN new_rows AS n ON n.workspace_id = o.workspace_id AND n.id = o.id "
        f"AND ({old}) IS DISTINCT FROM ({new})"
    )
    _function(
        "tally_deltas_updated",
        f"{_delta(f'(SELECT o.* FROM {changed}) AS s', -1, '')};\n"
        f"            {_delta(f'(SELECT n.* FROM {changed}) AS s', 1, '')}",
    )
    op.execute(
        "CREATE TRIGGER tally_deltas_insert AFTER INSERT ON responses "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION tally_deltas_inserted()"
    )
    op.execute(
        "CREATE TRIGGER tally_deltas_delete AFTER DELETE ON responses "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION tally_deltas_deleted()"
    )
    op.execute(
        "CREATE TRIGGER tally_deltas_update AFTER UPDATE ON responses "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION tally_deltas_updated()"
    )
    # The answers stored already, counted once, workspace by workspace (row-level security
    # binds the tables' owner too).
    answers = (
        "(SELECT workspace_id, submitted_at, superseded_at, role, job_level, score, 1 AS sign "
        "FROM responses WHERE workspace_id = ws AND NOT excluded) AS r"
    )
    columns = (
        "workspace_id, grain, bucket, role, job_level, score, answers, latest, "
        "latest_quarter, latest_year"
    )
    op.execute(
        f"""
        DO $$
        DECLARE
            ws uuid;
        BEGIN
            FOR ws IN SELECT id FROM workspaces LOOP
                PERFORM set_config('app.workspace_id', ws::text, true);
                INSERT INTO answer_tallies ({columns}) {tally_rows(answers, "week")};
                INSERT INTO answer_tallies ({columns}) {tally_rows(answers, "month")};
            END LOOP;
            PERFORM set_config('app.workspace_id', '', true);
        END $$
        """
    )
    _leftovers(LEFTOVERS)


def downgrade() -> None:
    _leftovers(LEFTOVERS_BEFORE)
    for event in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER tally_deltas_{event} ON responses")
    for name in ("inserted", "deleted", "updated"):
        op.execute(f"DROP FUNCTION tally_deltas_{name}()")
    op.drop_table("tally_deltas")
    op.drop_table("answer_tallies")
