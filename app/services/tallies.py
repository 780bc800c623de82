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

Exact, never stale: a bucket with a dirty day (`tally_dirt`, added by triggers in the writing
transaction) is counted from the answers in the same request; `tallies.fold` in the worker
recounts dirty buckets, so under steady writes only the current buckets take the slow path.
"""

import itertools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import DateTime, cast, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.buckets import Interval, bucket_end, bucket_interval, bucket_start
from app.db import driver, each_workspace
from app.jobs import JobContext, task
from app.models import AnswerTally, TallyDirt
from app.scoring import Category, Method, Tally, WeightedTally, classify
from app.services.cells import Cell, Cells
from app.services.selection import Dimension, Selection, column_name

FOLD_EVERY = timedelta(seconds=10)
# One fold at a time across workers (a period's job may still run when the next one starts).
_FOLD_LOCK = 0x7A11E5
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

Raw = Callable[[Selection], Awaitable[Cells]]


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
    raw: Raw,
) -> Cells:
    """The cells of `selection` (of whole `interval` buckets): clean windows from the tallies,
    dirty ones from the answers (`raw`, the answer-level count of app.services.counting)."""
    windows = selection.windows
    bounds = literal([windows[0].start, *(w.end for w in windows)], _INSTANTS)
    day_start = func.timezone("UTC", cast(TallyDirt.day, DateTime))
    dirty_query = (
        select(func.width_bucket(day_start, bounds) - 1)
        .distinct()
        .where(
            TallyDirt.workspace_id == workspace_id,
            TallyDirt.day >= windows[0].start.date(),
            TallyDirt.day < windows[-1].end.date(),
        )
    )
    dirty = sorted((await session.scalars(dirty_query)).all())
    cells: Cells = {}
    if len(dirty) < len(windows):
        cells = await _from_tallies(session, workspace_id, selection, dimensions, interval)
        for key in [k for k in cells if k[0] in set(dirty)]:
            del cells[key]
    if dirty:
        recount = await raw(replace(selection, windows=[windows[i] for i in dirty]))
        cells |= {(dirty[key[0]], *key[1:]): cell for key, cell in recount.items()}
    return cells


async def _from_tallies(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    selection: Selection,
    dimensions: Sequence[Dimension],
    interval: Interval,
) -> Cells:
    windows = selection.windows
    bounds = literal([windows[0].start, *(w.end for w in windows)], _INSTANTS)
    counted = AnswerTally.answers if selection.method is Method.RESPONDENT else _LATEST[interval]
    grain = "week" if interval is Interval.WEEK else "month"
    wanted = selection.filters.wanted()
    conditions = [getattr(AnswerTally, name) == value for name, value in wanted.items()]
    period = (func.width_bucket(AnswerTally.bucket, bounds) - 1).label("period")
    query = (
        select(
            period,
            AnswerTally.role,
            AnswerTally.job_level,
            AnswerTally.score,
            func.sum(counted),
        )
        .where(
            AnswerTally.workspace_id == workspace_id,
            AnswerTally.grain == grain,
            AnswerTally.bucket >= windows[0].start,
            AnswerTally.bucket < windows[-1].end,
            counted > 0,
            *conditions,
        )
        .group_by(period, AnswerTally.role, AnswerTally.job_level, AnswerTally.score)
    )
    rows = (await session.execute(query)).all()
    names = [column_name(d) for d in dimensions]
    weighting = selection.weighting
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
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for period_index, role, job_level, score, number in rows:
        values = {"role": role, "job_level": job_level}
        key = (period_index, *(values[n] for n in names))
        entry = sums.setdefault(key, [0, 0, 0, Fraction(0), Fraction(0), Fraction(0), Fraction(0)])
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


# Folding: the worker recounts the buckets of the dirty days.


def _instant(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


_RECOUNT = """
INSERT INTO answer_tallies (workspace_id, grain, bucket, role, job_level, score, answers, latest,
                            latest_quarter, latest_year)
SELECT $1, $2, b.start, r.role, r.job_level, r.score, count(*),
       count(*) FILTER (WHERE r.superseded_at >= b.finish),
       count(*) FILTER (WHERE r.superseded_at >= b.quarter_end),
       count(*) FILTER (WHERE r.superseded_at >= b.year_end)
FROM unnest($3::timestamptz[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[])
     AS b (start, finish, quarter_end, year_end)
JOIN responses AS r
  ON r.workspace_id = $1 AND NOT r.excluded
 AND r.submitted_at >= b.start AND r.submitted_at < b.finish
GROUP BY b.start, r.role, r.job_level, r.score
"""


async def fold(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    """Recount the buckets of the workspace's dirty days in the session's transaction; the
    number of buckets recounted."""
    return await fold_on(await driver(session), workspace_id)


async def fold_on(conn: Any, workspace_id: uuid.UUID) -> int:
    """fold() on an asyncpg connection, in its transaction. The dirt is deleted first: a change
    committed after this statement's snapshot left dirt that this fold does not see, so it is
    recounted next time."""
    days = [
        row["day"]
        for row in await conn.fetch(
            "WITH gone AS (DELETE FROM tally_dirt WHERE workspace_id = $1 RETURNING day) "
            "SELECT DISTINCT day FROM gone",
            workspace_id,
        )
    ]
    if not days:
        return 0
    weeks = sorted({bucket_start(_instant(d), Interval.WEEK) for d in days})
    months = sorted({bucket_start(_instant(d), Interval.MONTH) for d in days})
    await conn.execute(
        "DELETE FROM answer_tallies WHERE workspace_id = $1 AND ("
        "(grain = 'week' AND bucket = ANY($2::timestamptz[])) OR "
        "(grain = 'month' AND bucket = ANY($3::timestamptz[])))",
        workspace_id,
        weeks,
        months,
    )
    ends = [bucket_end(w, Interval.WEEK) for w in weeks]
    nothing = [None] * len(weeks)  # a week's rows count no quarter's or year's latest answers
    await conn.execute(_RECOUNT, workspace_id, "week", weeks, ends, nothing, nothing)
    await conn.execute(
        _RECOUNT,
        workspace_id,
        "month",
        months,
        [bucket_end(m, Interval.MONTH) for m in months],
        [bucket_end(bucket_start(m, Interval.QUARTER), Interval.QUARTER) for m in months],
        [bucket_end(bucket_start(m, Interval.YEAR), Interval.YEAR) for m in months],
    )
    return len(weeks) + len(months)


@task("tallies.fold", every=FOLD_EVERY)
async def fold_periodically(ctx: JobContext) -> None:
    """Recount every workspace's dirty buckets (a look at an empty index when nothing
    changed)."""
    conn = await driver(ctx.session)
    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _FOLD_LOCK):
        return  # another worker is folding; what it leaves is folded next period
    async for workspace_id in each_workspace(ctx.session):
        await fold(ctx.session, workspace_id)
