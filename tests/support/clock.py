"""Time in the tests: one window (2026-01-01 to 2026-04-01, UTC) and its instants.

`at` gives a datetime; anything that gives a string says so in its name (`stamp`, `stamp_at`,
`iso_at`), so the same name never means two types.
"""

from datetime import UTC, datetime, timedelta

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)
# The default window of the score tests, as query parameters.
WINDOW = {"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def at(days: float) -> datetime:
    """`days` after START (2026-01-01T00:00:00Z)."""
    return START + timedelta(days=days)


def stamp(moment: datetime) -> str:
    """The instant as the service echoes it: RFC 3339 in UTC with `Z`."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def stamp_at(days: float) -> str:
    """`stamp(at(days))`: the echoed form of the instant `days` after START."""
    return stamp(at(days))


def iso_at(days: float) -> str:
    """The instant `days` after START as sent in a request: isoformat, offset `+00:00`."""
    return at(days).isoformat()


def ago(**delta: float) -> datetime:
    """The real clock's now minus `delta` (timedelta's keywords), for rows the service compares
    with its own now: an answer given 31 minutes ago, an invitation expired a second ago."""
    return datetime.now(UTC) - timedelta(**delta)


def minute_end(moment: datetime) -> datetime:
    """The end of the UTC minute `moment` is in: where a window left open ends."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)


class Clock:
    """A clock a test sets and moves, for code that is handed one (the rate limits' windows)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
