"""Trend and comparison reports from their cells."""

from collections.abc import Mapping
from datetime import UTC

from app.buckets import Interval
from app.models import Account
from app.presenters.scores import account_profile, change_read, score_read, weights_read
from app.schemas.trends import CompareReport, CompareSide, TrendPoint, TrendReport, TrendSeries
from app.services.cells import Cell
from app.services.selection import Counting, Dimension, Filters, column_name
from app.services.trends import Comparison, Side, Trend


def points_read(trend: Trend, cells: list[Cell], counting: Counting) -> list[TrendPoint]:
    """Each bucket's score and its change from the last non-empty point, if disjoint from it."""
    points = []
    last: int | None = None
    bounds, windows = trend.bounds, trend.windows
    for i, ((start, end), window, cell) in enumerate(zip(bounds, windows, cells, strict=True)):
        change = None
        if cell.tally.n and last is not None and windows[last].end <= window.start:
            change = change_read(cell, cells[last], counting.options, previous=bounds[last][0])
        points.append(
            TrendPoint(
                start=start,
                end=end,
                from_=window.start,
                to=window.end,
                score=score_read(cell, counting.options),
                change=change,
            )
        )
        if cell.tally.n:
            last = i
    return points


def trend_report(
    trend: Trend,
    counting: Counting,
    *,
    filters: Filters,
    interval: Interval,
    tz: str,
    rolling_days: int | None,
    accounts: Mapping[str, Account] | None = None,
) -> TrendReport:
    """With `accounts` (group_by=account), each series carries its account's profile."""
    series = None
    if trend.group_by is not None:
        name = column_name(trend.group_by)
        series = [
            TrendSeries(
                key={name: key},
                account=None if accounts is None else account_profile(accounts.get(key)),
                points=points_read(trend, line, counting),
            )
            for key, line in trend.groups
        ]
    return TrendReport(
        method=counting.method.value,
        weights=weights_read(counting, trend.cells),
        interval=interval.value,
        tz=tz,
        rolling_days=rolling_days,
        from_=trend.bounds[0][0].astimezone(UTC),
        to=trend.bounds[-1][1].astimezone(UTC),
        filters=filters.echo(),
        points=points_read(trend, trend.total, counting),
        series=series,
    )


def _side(side: Side, counting: Counting) -> CompareSide:
    return CompareSide(
        from_=side.window.start,
        to=side.window.end,
        filters=side.filters,
        score=score_read(side.cell, counting.options),
    )


def compare_report(
    comparison: Comparison, counting: Counting, *, dimension: Dimension | None
) -> CompareReport:
    return CompareReport(
        method=counting.method.value,
        weights=weights_read(counting, comparison.cells),
        dimension=None if dimension is None else dimension.value,
        a=_side(comparison.a, counting),
        b=_side(comparison.b, counting),
        change=change_read(comparison.a.cell, comparison.b.cell, counting.options),
    )
