"""Trends over calendar buckets, and comparisons of two periods or two segments."""

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.api.auth import ReadAuth
from app.api.bodies import present
from app.api.report_tags import REVALIDATE, TAGGED_DOCS
from app.api.score_params import CountingDep, FiltersDep, WindowDep
from app.bodies import StrictRoute
from app.buckets import Interval
from app.db import ReadSessionDep
from app.errors import invalid_query
from app.presenters.trends import compare_report, trend_report
from app.schemas import Timestamp
from app.schemas.trends import CompareReport, TrendReport
from app.services import accounts, trends
from app.services.selection import Dimension

router = APIRouter(prefix="/v1/nps", tags=["scores"], route_class=StrictRoute)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a folder of zones
        raise invalid_query("tz", f"unknown IANA time zone {name!r}") from None


@router.get(
    "/trend",
    response_model=TrendReport,
    operation_id="get_nps_trend",
    dependencies=[REVALIDATE],
    responses=TAGGED_DOCS,
)
async def get_nps_trend(
    session: ReadSessionDep,
    auth: ReadAuth,
    filters: FiltersDep,
    counting: CountingDep,
    *,
    interval: Interval = Interval.MONTH,
    tz: Annotated[str, Query(max_length=64, description="IANA time zone of the buckets")] = "UTC",
    requested: WindowDep,
    group_by: Annotated[
        Dimension | None,
        Query(
            description="a line per value of this dimension besides the total; lines times "
            "points must stay within 20,000 (else 422)"
        ),
    ] = None,
    rolling_days: Annotated[
        int | None,
        Query(
            ge=1,
            le=3650,
            description="each point counts the trailing days up to its end; points times "
            "rolling_days must stay within 40,000 (else 422)",
        ),
    ] = None,
) -> TrendReport | Response:
    """The score per calendar bucket, with the significance of each change."""
    counting.require_portfolio(filters, group_by)
    zone = _zone(tz)
    span = requested.resolve()
    trend = await trends.nps_trend(
        session,
        auth.workspace_id,
        counting=counting,
        filters=filters,
        span=span,
        interval=interval,
        zone=zone,
        rolling_days=rolling_days,
        group_by=group_by,
    )
    profiles = None
    if group_by is Dimension.ACCOUNT:
        keys = [key for key, _ in trend.groups]
        profiles = await accounts.accounts_by_id(session, auth.workspace_id, keys)
    # Every line (the total and each group's) has a point per bucket.
    return await present(
        lambda: trend_report(
            trend,
            counting,
            filters=filters,
            interval=interval,
            tz=tz,
            rolling_days=rolling_days,
            accounts=profiles,
        ),
        items=(1 + len(trend.groups)) * len(trend.bounds),
    )


Value = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=128,
        description="with `dimension` only (required there): a value of that dimension",
    ),
]


@router.get(
    "/compare",
    response_model=CompareReport,
    operation_id="compare_nps",
    dependencies=[REVALIDATE],
    responses=TAGGED_DOCS,
)
async def compare_nps(
    session: ReadSessionDep,
    auth: ReadAuth,
    filters: FiltersDep,
    counting: CountingDep,
    requested: WindowDep,
    baseline_from: Annotated[
        Timestamp | None,
        Query(
            description="period B's start; default: the period of equal length before A "
            "(`from`/`to`), or of A's length before `baseline_to`. B must be before its end and "
            "must not overlap A; not with `dimension`"
        ),
    ] = None,
    baseline_to: Annotated[
        Timestamp | None,
        Query(
            description="period B's end (exclusive); default: A's length after `baseline_from`, "
            "or A's start; not with `dimension`"
        ),
    ] = None,
    dimension: Annotated[
        Dimension | None,
        Query(
            description="compare two values of this dimension in one window instead of two "
            "periods: needs `a` and `b` (different values), excludes `baseline_from`/"
            "`baseline_to` and a filter on the same dimension"
        ),
    ] = None,
    a: Value = None,
    b: Value = None,
) -> CompareReport:
    """Two periods, or two values of one dimension, with a two-sample test of the difference."""
    counting.require_portfolio(filters, dimension)
    window = requested.resolve()
    if dimension is None:
        if a is not None or b is not None:
            raise invalid_query("dimension", "`a` and `b` name values of a `dimension`")
        comparison = await trends.compare_periods(
            session,
            auth.workspace_id,
            counting=counting,
            filters=filters,
            window=window,
            baseline=trends.baseline_window(window, baseline_from, baseline_to),
        )
    else:
        if baseline_from is not None or baseline_to is not None:
            raise invalid_query("baseline_from", "compare periods or dimension values, not both")
        comparison = await trends.compare_values(
            session,
            auth.workspace_id,
            counting=counting,
            filters=filters,
            window=window,
            dimension=dimension,
            a=a,
            b=b,
        )
    return compare_report(comparison, counting, dimension=dimension)
