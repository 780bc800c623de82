"""refresh_statistics(): the planner's statistics kept fresh after large loads, autovacuum or not

A table filled by a bulk import has no statistics until it is analysed: with autovacuum off (or
behind), the plans of the scores are chosen blind, and the reports right after a load took
several times as long as once the table was analysed. The service's role owns no table, so it
cannot ANALYZE; this function, owned by the tables' owner (the migrating role, which can),
analyses each of responses, stakeholders and accounts whose rows changed by more than 500 plus
a tenth of its size since it was last analysed (or that never was), the rule of autovacuum's
own analyses. The batch path calls it after storing a batch (app.services.ingest); one caller
at a time analyses (an advisory lock), the others go on at once. It returns the tables it
analysed.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFRESH_STATISTICS = """
CREATE FUNCTION refresh_statistics(_min_changes bigint DEFAULT 500, _fraction float8 DEFAULT 0.1)
RETURNS text[] LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public AS $$
DECLARE
    name text;
    rel oid;
    analysed text[] := '{}';
BEGIN
    FOREACH name IN ARRAY ARRAY['responses', 'stakeholders', 'accounts'] LOOP
        rel := to_regclass('public.' || name);
        CONTINUE WHEN rel IS NULL;
        IF pg_stat_get_mod_since_analyze(rel) > _min_changes
                + _fraction * greatest((SELECT reltuples FROM pg_class WHERE oid = rel), 0)
            OR (pg_stat_get_last_analyze_time(rel) IS NULL
                AND pg_stat_get_last_autoanalyze_time(rel) IS NULL
                AND pg_stat_get_mod_since_analyze(rel) > _min_changes) THEN
            -- One analysis of a table at a time; a caller that finds one running goes on.
            CONTINUE WHEN NOT pg_try_advisory_xact_lock(hashtext('refresh_statistics'), rel::int);
            EXECUTE format('ANALYZE %I', name);
            analysed := analysed || name;
        END IF;
    END LOOP;
    RETURN analysed;
END
$$
"""


def upgrade() -> None:
    op.execute(REFRESH_STATISTICS)
    op.execute("REVOKE ALL ON FUNCTION refresh_statistics(bigint, float8) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION refresh_statistics(bigint, float8) TO nps_service")


def downgrade() -> None:
    op.execute("DROP FUNCTION refresh_statistics(bigint, float8)")
