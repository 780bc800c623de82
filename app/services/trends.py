"""Trends over calendar buckets, and comparisons of two periods or two values of a dimension."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.buckets import MAX_BUCKETS, Interval, buckets
from app.errors import invalid_query
from app.models import JobLevel, Role
from app.offload import off_loop
from app.services.cells import Cell, Cells, marginal, total
from app.services.counting import count
from app.services.selection import Counting, Dimension, Filters, Window, column_name, preceding
from app.sql import department_value

# Two years of weekly points with a 365-day rolling window each is about 38,000 window-days.
MAX_ROLLING_DAYS = 40_000
# Lines times points of a grouped trend: a weekly two-year trend over a thousand accounts was a
# 14 MB answer that stalled the process while it was built. 20,000 points are about 3 MB.
MAX_TREND_POINTS = 20_000

Bounds = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class Trend:
    """Per point: its bucket's bounds, the window it counts, and a cell per line."""

    bounds: list[Bounds]
    windows: list[Window]
    total: list[Cell]
    group_by: Dimension | None
    # One line per value of group_by, in key order (the unknown value last).
    groups: list[tuple[Any, list[Cell]]]
    cells: Cells


def trend_windows(
    span: Window, interval: Interval, zone: ZoneInfo, rolling_days: int | None
) -> tuple[list[Bounds], list[Window]]:
    """The whole calendar buckets over `span` and the window each point counts."""
    bounds = buckets(span.start, span.end, interval, zone)
    if bounds is None:
        raise invalid_query("interval", f"more than {MAX_BUCKETS} buckets: use a longer interval")
    if rolling_days is None:
        return bounds, [Window(start, end) for start, end in bounds]
    if len(bounds) * rolling_days > MAX_ROLLING_DAYS:
        # Overlapping windows count each answer once per window it falls in: bound that work.
        raise invalid_query(
            "rolling_days",
            f"{len(bounds)} points of {rolling_days} days each is over {MAX_ROLLING_DAYS:,} "
            "window-days: use a longer interval, a shorter range or fewer rolling days",
        )
    return bounds, [Window(end - timedelta(days=rolling_days), end) for _, end in bounds]


async def nps_trend(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    counting: Counting,
    filters: Filters,
    span: Window,
    interval: Interval,
    zone: ZoneInfo,
    rolling_days: int | None = None,
    group_by: Dimension | None = None,
) -> Trend:
    """Each bucket's cell, overall and per value of `group_by`, from one statement."""
    bounds, windows = trend_windows(span, interval, zone, rolling_days)
    dimensions = () if group_by is None else (group_by,)
    cells = await count(session, workspace_id, counting.selection(windows, filters), dimensions)
    periods = range(len(windows))

    def lines() -> Trend:
        groups = []
        if group_by is not None:
            per_period = [marginal(cells, 0, i) for i in periods]
            keys = sorted(
                set().union(*per_period), key=lambda k: (k is None, "" if k is None else str(k))
            )
            if len(keys) * len(windows) > MAX_TREND_POINTS:
                raise invalid_query(
                    "group_by",
                    f"{len(keys):,} {group_by.value} lines of {len(windows)} points each is "
                    f"over {MAX_TREND_POINTS:,} points: use a longer interval or a shorter "
                    "range, filter to fewer values (segment, account_id, ...), or group by "
                    "another dimension",
                )
            groups = [(key, [p.get(key, Cell()) for p in per_period]) for key in keys]
        return Trend(
            bounds=bounds,
            windows=windows,
            total=[total(cells, i) for i in periods],
            group_by=group_by,
            groups=groups,
            cells=cells,
        )

    # The marginals of a trend by account walk tens of thousands of cells (app.offload).
    return await off_loop(lines, items=len(cells))


# Comparisons


@dataclass(frozen=True, slots=True)
class Side:
    window: Window
    filters: dict[str, str]
    cell: Cell


@dataclass(frozen=True, slots=True)
class Comparison:
    a: Side
    b: Side
    cells: Cells


def baseline_window(window: Window, start: datetime | None, end: datetime | None) -> Window:
    """Period B: as given, else of A's length ending at `end` or starting at `start`, else the
    period right before A. It must not overlap A."""
    if start is None and end is None:
        baseline = preceding(window)
    else:
        length = window.end - window.start
        try:
            begin = start or (end or window.start) - length
            finish = end or begin + length
        except OverflowError:
            raise invalid_query("baseline_from", "the baseline period is out of range") from None
        baseline = Window(begin.astimezone(UTC), finish.astimezone(UTC))
    if baseline.start >= baseline.end:
        raise invalid_query("baseline_from", "`baseline_from` must be before `baseline_to`")
    if baseline.start < window.end and window.start < baseline.end:
        raise invalid_query("baseline_from", "the two periods overlap")
    return baseline


async def compare_periods(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    counting: Counting,
    filters: Filters,
    window: Window,
    baseline: Window,
) -> Comparison:
    """The same slice in two periods: A is `window`, B the baseline."""
    cells = await count(session, workspace_id, counting.selection([window, baseline], filters))
    echo = filters.echo()
    return Comparison(
        a=Side(window, echo, total(cells, 0)), b=Side(baseline, echo, total(cells, 1)), cells=cells
    )


_ENUMS: dict[Dimension, type[Role] | type[JobLevel]] = {
    Dimension.ROLE: Role,
    Dimension.JOB_LEVEL: JobLevel,
}


def dimension_values(dimension: Dimension, a: str | None, b: str | None) -> tuple[str, str]:
    """The two values to compare, as their groups are keyed (departments normalised)."""
    values = []
    for name, value in (("a", a), ("b", b)):
        if value is None:
            raise invalid_query(name, f"comparing by {dimension.value} needs `a` and `b`")
        enum = _ENUMS.get(dimension)
        if enum is not None and value not in {m.value for m in enum}:
            raise invalid_query(name, f"not a {dimension.value}: {value!r}")
        values.append(department_value(value) if dimension is Dimension.DEPARTMENT else value)
    if values[0] == values[1]:
        raise invalid_query("b", "`a` and `b` must differ")
    return values[0], values[1]


async def compare_values(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    counting: Counting,
    filters: Filters,
    window: Window,
    dimension: Dimension,
    a: str | None,
    b: str | None,
) -> Comparison:
    """Two values of one dimension in the same window and slice."""
    name = column_name(dimension)
    echo = filters.echo()
    if name in echo:
        raise invalid_query(name, f"cannot filter on {name} while comparing its values")
    value_a, value_b = dimension_values(dimension, a, b)
    cells = await count(session, workspace_id, counting.selection([window], filters), (dimension,))
    groups = marginal(cells, 0)
    return Comparison(
        a=Side(window, echo | {name: value_a}, groups.get(value_a, Cell())),
        b=Side(window, echo | {name: value_b}, groups.get(value_b, Cell())),
        cells=cells,
    )
