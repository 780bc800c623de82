"""Calendar buckets of a trend in a time zone (pure, standard library only)."""

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

MAX_BUCKETS = 1000


class Interval(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


def _floor(local: datetime, interval: Interval) -> datetime:
    """The start of the bucket holding a local time: Monday, the 1st, the quarter, Jan 1."""
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    if interval is Interval.WEEK:
        return midnight - timedelta(days=midnight.weekday())
    if interval is Interval.MONTH:
        return midnight.replace(day=1)
    if interval is Interval.QUARTER:
        return midnight.replace(day=1, month=3 * ((midnight.month - 1) // 3) + 1)
    return midnight.replace(day=1, month=1)


def _next(start: datetime, interval: Interval) -> datetime:
    if interval is Interval.WEEK:
        return start + timedelta(days=7)  # wall-clock arithmetic: midnight stays midnight
    months = {Interval.MONTH: 1, Interval.QUARTER: 3, Interval.YEAR: 12}[interval]
    index = start.year * 12 + start.month - 1 + months
    return start.replace(year=index // 12, month=index % 12 + 1)


def buckets(
    start: datetime, end: datetime, interval: Interval, tz: ZoneInfo
) -> list[tuple[datetime, datetime]] | None:
    """Whole buckets from the one holding `start` to the one holding the instant before `end`.

    Bounds are local midnights in `tz`, returned in UTC; None when there would be more than
    MAX_BUCKETS of them.
    """
    out: list[tuple[datetime, datetime]] = []
    current = _floor(start.astimezone(tz), interval)
    while current.astimezone(UTC) < end:
        following = _next(current, interval)
        out.append((current.astimezone(UTC), following.astimezone(UTC)))
        if len(out) > MAX_BUCKETS:
            return None
        current = following
    return out


def bucket_interval(start: datetime, end: datetime) -> Interval | None:
    """The interval whose UTC calendar bucket [start, end) is exactly, if any (the shortest)."""
    local = start.astimezone(UTC)
    for interval in Interval:
        if _floor(local, interval) == local and _next(local, interval) == end:
            return interval
    return None
