"""Pre-counted calendar buckets (migration 0023): trends and calendar-period scores from a few
hundred rows instead of every answer.

`answer_tallies` holds per UTC week and UTC month, role, job level and score the number of
answers and how many were their stakeholder's latest in the bucket (for a month also in its
quarter and its year). The latest answer in a bucket is read off the chain exactly as the
answer-level path reads it (superseded_at at or after the bucket's end), and a stakeholder's
answer is counted as it was given, so counts per role and job level add up as they do there.

What it answers: windows that are each exactly one UTC calendar week, month, quarter or year,
back to back (a trend in UTC without rolling_days, or a score whose `from`/`to` are a calendar
month, quarter or year), under `respondent`, `latest_per_stakeholder` and `role_weighted`, cut
and grouped by role and job level only. Everything else (another time zone, a survey, account,
department, segment or industry filter or group, decision_maker_first, account_as_unit) needs
the answers themselves and takes the answer-level path (app.services.counting).

Exact, never stale: every change to an answer adds deltas (+1 as it is now, -1 as it was) in
the writing transaction (migration 0023's triggers), and a count reads the tallies and the
pending deltas in one statement, so it is the answers' count at that statement's snapshot,
whatever the worker has done; the worker's `tallies.fold` moves the deltas into the tallies
every FOLD_EVERY, so only the last seconds' changes are read one by one.
"""

import itertools
import uuid
from collections.abc import Sequence
from datetime import timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import DateTime, func, literal, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.buckets import Interval, bucket_interval
from app.db import driver, each_workspace
from app.jobs import JobContext, task
from app.models import AnswerTally, TallyDelta
from app.scoring import Category, Method, Tally, WeightedTally, classify
from app.services.cells import Cell, Cells
from app.services.selection import Dimension, Selection, Weighting, column_name

FOLD_EVERY = timedelta(seconds=10)
_FOLD_LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended('tallies.fold', 0))"
_METHODS = frozenset({Method.RESPONDENT, Method.LATEST_PER_STAKEHOLDER, Method.ROLE_WEIGHTED})
_DIMENSIONS = frozenset({Dimension.ROLE, Dimension.JOB_LEVEL})
_FILTERS = frozenset({"role", "job_level"})
_INSTANTS = ARRAY(DateTime(timezone=True))
# The tally column that counts the latest answers of a bucket of each interval.
_LATEST = {
    Interval.WEEK: AnswerTally.latest,
    Interval.MONTH: AnswerTally.latest,
    Interval.QUARTER: AnswerTally.latest_quarter,
    Interval.YEAR: AnswerTally.latest_year,
}


def interval_of(selection: Selection, dimensions: Sequence[Dimension]) -> Interval | None:
    """The calendar interval the tallies can count this selection in, or None."""
    filters = selection.filters
    if (
        selection.method not in _METHODS
        or selection.by_revenue
        or filters.survey is not None
        or not set(filters.wanted()) <= _FILTERS
        or not set(dimensions) <= _DIMENSIONS
        or not selection.windows
    ):
        return None
    windows = selection.windows
    interval = bucket_interval(windows[0].start, windows[0].end)
    if interval is None:
        return None
    for before, after in itertools.pairwise(windows):
        if before.end != after.start or bucket_interval(after.start, after.end) is not interval:
            return None
    return interval


async def count(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    selection: Selection,
    dimensions: Sequence[Dimension],
    interval: Interval,
) -> Cells:
    """The cells of `selection` (back-to-back whole `interval` buckets, interval_of): the
    tallies plus the deltas not folded yet, in one statement."""
    windows = selection.windows
    bounds = literal([windows[0].start, *(w.end for w in windows)], _INSTANTS)
    respondent = selection.method is Method.RESPONDENT
    wanted = selection.filters.wanted()
    grain = "week" if interval is Interval.WEEK else "month"
    tallied = select(
        (func.width_bucket(AnswerTally.bucket, bounds) - 1).label("period"),
        AnswerTally.role,
        AnswerTally.job_level,
        AnswerTally.score,
        (AnswerTally.answers if respondent else _LATEST[interval]).label("n"),
    ).where(
        AnswerTally.workspace_id == workspace_id,
        AnswerTally.grain == grain,
        AnswerTally.bucket >= windows[0].start,
        AnswerTally.bucket < windows[-1].end,
        *(getattr(AnswerTally, name) == value for name, value in wanted.items()),
    )
    bucket = func.width_bucket(TallyDelta.submitted_at, bounds)
    pending = select(
        (bucket - 1).label("period"),
        TallyDelta.role,
        TallyDelta.job_level,
        TallyDelta.score,
        TallyDelta.sign.label("n"),
    ).where(
        TallyDelta.workspace_id == workspace_id,
        TallyDelta.submitted_at >= windows[0].start,
        TallyDelta.submitted_at < windows[-1].end,
        *(getattr(TallyDelta, name) == value for name, value in wanted.items()),
    )
    if not respondent:
        # The latest in its bucket: superseded at or after the bucket's end.
        pending = pending.where(func.width_bucket(TallyDelta.superseded_at, bounds) > bucket)
    both = union_all(tallied, pending).subquery("counted")
    group = [both.c.period, both.c.role, both.c.job_level, both.c.score]
    rows = (await session.execute(select(*group, func.sum(both.c.n)).group_by(*group))).all()
    return _cells(rows, [column_name(d) for d in dimensions], selection.weighting)


def _cells(rows: Sequence[Any], names: list[str], weighting: Weighting | None) -> Cells:
    """Cells keyed (period, *names) from counts per (period, role, job level, score)."""
    weight_of: dict[tuple[str, str], Fraction] = {}

    def weight(role: str, job_level: str) -> Fraction:
        # The answer-level path's exact decimal weights (counting._weight), summed exactly.
        key = (role, job_level)
        if key not in weight_of:
            assert weighting is not None
            w_role = Fraction(repr(float(weighting.role.get(role, 1))))
            w_level = Fraction(repr(float(weighting.job_level.get(job_level, 1))))
            weight_of[key] = w_role * w_level
        return weight_of[key]

    order = {Category.PROMOTER: 0, Category.PASSIVE: 1, Category.DETRACTOR: 2}
    zero = Fraction(0)
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for period_index, role, job_level, score, number in rows:
        if not number:
            continue
        values = {"role": role, "job_level": job_level}
        key = (period_index, *(values[n] for n in names))
        entry = sums.setdefault(key, [0, 0, 0, zero, zero, zero, zero])
        position = order[classify(int(score))]
        entry[position] += int(number)
        if weighting is not None:
            w = weight(role, job_level)
            entry[3 + position] += w * int(number)
            entry[6] += w * w * int(number)
    return {
        key: Cell(
            Tally(e[0], e[1], e[2]),
            None if weighting is None else WeightedTally(*(float(v) for v in e[3:])),
        )
        for key, e in sums.items()
    }


# Folding: the worker moves the deltas into the tallies.


def _utc(grain: str, column: str, step: str | None = None) -> str:
    """The UTC start of the `grain` holding `column` (or of the one `step` later)."""
    local = f"date_trunc('{grain}', {column} AT TIME ZONE 'UTC')"
    return (
        f"(({local} + interval '{step}') AT TIME ZONE 'UTC')"
        if step
        else f"({local} AT TIME ZONE 'UTC')"
    )


def _tally_rows(source: str, grain: str) -> str:
    """The tallies of `grain` from rows of (submitted_at, superseded_at, role, job_level,
    score, sign): migration 0023 made the first ones with the same expressions."""

    def latest_in(of: str, step: str) -> str:
        end = _utc(of, "submitted_at", step)
        return f"coalesce(sum(sign) FILTER (WHERE superseded_at >= {end}), 0)"

    later = "0, 0"
    if grain == "month":
        later = f"{latest_in('quarter', '3 months')}, {latest_in('year', '1 year')}"
    return (
        f"SELECT $1::uuid, '{grain}', {_utc(grain, 'submitted_at')} AS bucket, role, job_level, "
        f"score, sum(sign), {latest_in(grain, '1 ' + grain)}, {later} "
        f"FROM {source} GROUP BY bucket, role, job_level, score"
    )


_ADD = (
    " ON CONFLICT (workspace_id, grain, bucket, role, job_level, score) DO UPDATE SET "
    + ", ".join(
        f"{c} = answer_tallies.{c} + excluded.{c}"
        for c in ("answers", "latest", "latest_quarter", "latest_year")
    )
)
_COLUMNS = (
    "workspace_id, grain, bucket, role, job_level, score, answers, latest, latest_quarter, "
    "latest_year"
)
_FOLD = f"""
WITH gone AS (
    DELETE FROM tally_deltas WHERE workspace_id = $1
    RETURNING submitted_at, superseded_at, role, job_level, score, sign
),
weeks AS (
    INSERT INTO answer_tallies ({_COLUMNS}) {_tally_rows("gone", "week")}{_ADD}
),
months AS (
    INSERT INTO answer_tallies ({_COLUMNS}) {_tally_rows("gone", "month")}{_ADD}
)
SELECT count(*) FROM gone
"""


async def fold(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    """Move the workspace's deltas into its tallies, in the session's transaction; how many
    there were."""
    return await fold_on(await driver(session), workspace_id)


async def fold_on(conn: Any, workspace_id: uuid.UUID) -> int:
    """fold() on an asyncpg connection, in its transaction: one statement deletes the deltas
    and adds their sums, so a reader sees them either pending or in the tallies, never both.
    A tally that comes to nothing stays (readers skip it): there are at most 220 per bucket,
    and sweeping them read every tally of the workspace on every fold."""
    folded: int = await conn.fetchval(_FOLD, workspace_id)
    return folded


@task("tallies.fold", every=FOLD_EVERY)
async def fold_periodically(ctx: JobContext) -> None:
    """Fold every workspace's deltas (a look at an empty index when nothing changed). One fold
    at a time: two would upsert the same tallies in their own orders, each waiting on rows the
    other holds."""
    conn = await driver(ctx.session)
    if not await conn.fetchval(_FOLD_LOCK):
        return  # another worker is folding; what it leaves is folded next period
    async for workspace_id in each_workspace(ctx.session):
        await fold(ctx.session, workspace_id)
