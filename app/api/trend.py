"""Trends over calendar buckets, and comparisons of two periods or two segments."""

from datetime import UTC, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query

from app.api.deps import ReadAuth
from app.api.score_params import Counting, CountingDep, FiltersDep, From, To, preceding
from app.buckets import MAX_BUCKETS, Interval, buckets
from app.db import ReadSessionDep
from app.errors import invalid_query
from app.models import JobLevel, Role
from app.schemas import Timestamp
from app.schemas.trends import CompareReport, CompareSide, TrendPoint, TrendReport, TrendSeries
from app.services.cells import Cell, marginal, total
from app.services.nps import Dimension, Filters, Selection, Window, column_name, count
from app.services.reports import change_read, score_read

router = APIRouter(prefix="/v1/nps", tags=["scores"])

# Two years of weekly points with a 365-day rolling window each is about 38,000 window-days.
MAX_ROLLING_DAYS = 40_000


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a folder of zones
        raise invalid_query("tz", f"unknown IANA time zone {name!r}") from None


def _selection(windows: list[Window], filters: Filters, counting: Counting) -> Selection:
    return Selection(
        tuple(windows), filters, counting.method, counting.weighting, counting.by_revenue
    )


def _points(
    bounds: list[tuple[Any, Any]], windows: list[Window], cells: list[Cell], counting: Counting
) -> list[TrendPoint]:
    """Each bucket's score and its change from the last non-empty point, if disjoint from it."""
    points = []
    last: int | None = None
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


@router.get("/trend", response_model=TrendReport, operation_id="get_nps_trend")
async def get_nps_trend(
    session: ReadSessionDep,
    auth: ReadAuth,
    filters: FiltersDep,
    counting: CountingDep,
    interval: Interval = Interval.MONTH,
    tz: Annotated[str, Query(max_length=64, description="IANA time zone of the buckets")] = "UTC",
    from_: From = None,
    to: To = None,
    group_by: Dimension | None = None,
    rolling_days: Annotated[
        int | None,
        Query(ge=1, le=3650, description="each point counts the trailing days up to its end"),
    ] = None,
) -> TrendReport:
    """The score per calendar bucket, with the significance of each change."""
    counting.require_portfolio(filters, group_by)
    zone = _zone(tz)
    span = counting.window(from_, to)
    bounds = buckets(span.start, span.end, interval, zone)
    if bounds is None:
        raise invalid_query("interval", f"more than {MAX_BUCKETS} buckets: use a longer interval")
    if rolling_days is None:
        windows = [Window(start, end) for start, end in bounds]
    elif len(bounds) * rolling_days > MAX_ROLLING_DAYS:
        # Overlapping windows count each answer once per window it falls in: bound that work.
        raise invalid_query(
            "rolling_days",
            f"{len(bounds)} points of {rolling_days} days each is over {MAX_ROLLING_DAYS:,} "
            "window-days: use a longer interval, a shorter range or fewer rolling days",
        )
    else:
        windows = [Window(end - timedelta(days=rolling_days), end) for _, end in bounds]
    dimensions = () if group_by is None else (group_by,)
    cells = await count(
        session, auth.workspace_id, _selection(windows, filters, counting), dimensions
    )
    periods = range(len(windows))
    series = None
    if group_by is not None:
        per_period = [marginal(cells, 0, i) for i in periods]
        keys = sorted(
            set().union(*per_period), key=lambda k: (k is None, "" if k is None else str(k))
        )
        series = [
            TrendSeries(
                key={column_name(group_by): key},
                points=_points(bounds, windows, [p.get(key, Cell()) for p in per_period], counting),
            )
            for key in keys
        ]
    return TrendReport(
        method=counting.method.value,
        weights=counting.weights_read(cells),
        interval=interval.value,
        tz=tz,
        rolling_days=rolling_days,
        from_=bounds[0][0].astimezone(UTC),
        to=bounds[-1][1].astimezone(UTC),
        filters=filters.echo(),
        points=_points(bounds, windows, [total(cells, i) for i in periods], counting),
        series=series,
    )


Value = Annotated[str | None, Query(min_length=1, max_length=128)]
_ENUMS: dict[Dimension, type[Role] | type[JobLevel]] = {
    Dimension.ROLE: Role,
    Dimension.JOB_LEVEL: JobLevel,
}


def _dimension_values(dimension: Dimension, a: str | None, b: str | None) -> tuple[str, str]:
    values = []
    for name, value in (("a", a), ("b", b)):
        if value is None:
            raise invalid_query(name, f"comparing by {dimension.value} needs `a` and `b`")
        enum = _ENUMS.get(dimension)
        if enum is not None and value not in {m.value for m in enum}:
            raise invalid_query(name, f"not a {dimension.value}: {value!r}")
        values.append(value.strip().lower() if dimension is Dimension.DEPARTMENT else value)
    if values[0] == values[1]:
        raise invalid_query("b", "`a` and `b` must differ")
    return values[0], values[1]


@router.get("/compare", response_model=CompareReport, operation_id="compare_nps")
async def compare_nps(
    session: ReadSessionDep,
    auth: ReadAuth,
    filters: FiltersDep,
    counting: CountingDep,
    from_: From = None,
    to: To = None,
    baseline_from: Annotated[
        Timestamp | None,
        Query(description="period B's start; default: the period of equal length before A"),
    ] = None,
    baseline_to: Annotated[
        Timestamp | None, Query(description="period B's end (exclusive)")
    ] = None,
    dimension: Annotated[
        Dimension | None, Query(description="compare two values of this dimension instead")
    ] = None,
    a: Value = None,
    b: Value = None,
) -> CompareReport:
    """Two periods, or two values of one dimension, with a two-sample test of the difference."""
    counting.require_portfolio(filters, dimension)
    window = counting.window(from_, to)
    echo = filters.echo()
    if dimension is None:
        if a is not None or b is not None:
            raise invalid_query("dimension", "`a` and `b` name values of a `dimension`")
        if baseline_from is None and baseline_to is None:
            baseline = preceding(window)
        else:
            length = window.end - window.start
            try:
                start = baseline_from or (baseline_to or window.start) - length
                end = baseline_to or start + length
            except OverflowError:
                raise invalid_query(
                    "baseline_from", "the baseline period is out of range"
                ) from None
            baseline = Window(start.astimezone(UTC), end.astimezone(UTC))
        if baseline.start >= baseline.end:
            raise invalid_query("baseline_from", "`baseline_from` must be before `baseline_to`")
        if baseline.start < window.end and window.start < baseline.end:
            raise invalid_query("baseline_from", "the two periods overlap")
        cells = await count(
            session, auth.workspace_id, _selection([window, baseline], filters, counting)
        )
        first, second = total(cells, 0), total(cells, 1)
        sides = ((window, echo), (baseline, echo))
    else:
        if baseline_from is not None or baseline_to is not None:
            raise invalid_query("baseline_from", "compare periods or dimension values, not both")
        name = column_name(dimension)
        if name in echo:
            raise invalid_query(name, f"cannot filter on {name} while comparing its values")
        value_a, value_b = _dimension_values(dimension, a, b)
        cells = await count(
            session, auth.workspace_id, _selection([window], filters, counting), (dimension,)
        )
        groups = marginal(cells, 0)
        first, second = groups.get(value_a, Cell()), groups.get(value_b, Cell())
        sides = ((window, echo | {name: value_a}), (window, echo | {name: value_b}))
    side_a, side_b = (
        CompareSide(from_=w.start, to=w.end, filters=f, score=score_read(c, counting.options))
        for (w, f), c in zip(sides, (first, second), strict=True)
    )
    return CompareReport(
        method=counting.method.value,
        weights=counting.weights_read(cells),
        dimension=None if dimension is None else dimension.value,
        a=side_a,
        b=side_b,
        change=change_read(first, second, counting.options),
    )
