"""Windows a request leaves open: their end is a stable instant, the end of the minute."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.errors import Unprocessable
from app.services.selection import Window, default_end, make_window, preceding


@pytest.mark.parametrize(
    ("now", "end"),
    [
        (datetime(2026, 12, 1, 9, 16, 0, tzinfo=UTC), datetime(2026, 12, 1, 9, 17, tzinfo=UTC)),
        (
            datetime(2026, 12, 1, 9, 16, 59, 999999, tzinfo=UTC),
            datetime(2026, 12, 1, 9, 17, tzinfo=UTC),
        ),
        (datetime(2026, 12, 31, 23, 59, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        # An offset of half an hour still ends on a whole UTC minute.
        (
            datetime(2026, 12, 1, 15, 0, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            datetime(2026, 12, 1, 9, 31, tzinfo=UTC),
        ),
    ],
)
def test_the_default_end_is_the_end_of_the_minute(now: datetime, end: datetime) -> None:
    assert default_end(now) == end
    assert default_end(now) > now


def test_two_instants_in_one_minute_give_the_same_window() -> None:
    first = make_window(None, None, days=30, now=datetime(2026, 12, 1, 9, 16, 1, tzinfo=UTC))
    second = make_window(None, None, days=30, now=datetime(2026, 12, 1, 9, 16, 58, tzinfo=UTC))
    assert (
        first
        == second
        == Window(
            datetime(2026, 11, 1, 9, 17, tzinfo=UTC), datetime(2026, 12, 1, 9, 17, tzinfo=UTC)
        )
    )


def test_a_given_end_is_kept_to_the_microsecond() -> None:
    end = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert make_window(None, end, days=1, now=datetime(2027, 1, 1, tzinfo=UTC)) == Window(
        end - timedelta(days=1), end
    )


def test_from_must_be_before_to() -> None:
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(Unprocessable) as raised:
        make_window(moment, moment, days=1, now=moment)
    assert raised.value.errors == [{"loc": ["query", "from"], "msg": "not before `to`"}]


def test_the_period_before_has_the_same_length() -> None:
    window = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC))
    assert preceding(window) == Window(
        datetime(2026, 2, 19, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    )
