"""The guard's pure parts: client addresses, fixed windows, the RateLimit fields, the 429, and
where a token is found."""

from datetime import UTC, datetime

import pytest

from app.config import Settings
from app.guard import bearer_token, limits_from, rate_limit_headers, refusal, token_after
from app.services.rate_limits import Limits, Policy, Tally, Usage, client_key

PER_MINUTE = Policy("ip", 120, 60)
TOKEN = "npsi_" + "t" * 43


def scope(
    path: str = "/v1/public/invitation", authorization: str | None = None
) -> dict[str, object]:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return {"type": "http", "path": path, "root_path": "", "headers": headers}


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "ip:203.0.113.7"),
        # A client holds a whole /64: its addresses share one count.
        ("2001:db8:1:2:aaaa::1", "ip:2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "ip:2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "ip:2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "ip:203.0.113.7"),
        (None, "ip:unknown"),
        ("testclient", "ip:testclient"),
    ],
)
def test_client_key(host: str | None, key: str) -> None:
    assert client_key(host) == key


@pytest.mark.parametrize(
    ("now", "start", "left"),
    [
        (datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, tzinfo=UTC), 60),
        (datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, tzinfo=UTC), 30),
        (
            datetime(2026, 1, 1, 0, 0, 59, 500_000, tzinfo=UTC),
            datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
            1,
        ),
        (datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC), datetime(2026, 1, 1, 0, 1, tzinfo=UTC), 60),
    ],
)
def test_fixed_windows_start_on_multiples_of_their_length(
    now: datetime, start: datetime, left: int
) -> None:
    assert PER_MINUTE.window_start(now) == start
    assert PER_MINUTE.seconds_left(now) == left


def test_the_fields_list_each_policy_counted() -> None:
    token = Policy("token", 30, 60)
    result = Tally((Usage(PER_MINUTE, 3, 30), Usage(token, 31, 30)))

    assert rate_limit_headers(result) == {
        "RateLimit-Policy": '"ip";q=120;w=60, "token";q=30;w=60',
        "RateLimit": '"ip";r=117;t=30, "token";r=0;t=30',
    }
    assert rate_limit_headers(Tally(())) == {}


def test_the_429_waits_for_the_last_violated_window_and_names_the_policies() -> None:
    hourly = Policy("token", 2, 3600)
    result = Tally((Usage(Policy("ip", 1, 60), 2, 12), Usage(hourly, 3, 1800)))

    error = refusal(result, {"RateLimit": "x"})

    assert (error.status, error.headers) == (429, {"RateLimit": "x", "Retry-After": "1800"})
    assert error.body() == {
        "type": "/problems/rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": "too many requests from this address and with this invitation token; "
        "retry in 1800 seconds",
        "violated-policies": ["ip", "token"],
    }


def test_limits_come_from_the_settings_and_zero_is_off() -> None:
    assert limits_from(Settings(public_rate_limit_per_token=0)) == Limits(ip=PER_MINUTE, token=None)
    assert limits_from(
        Settings(public_rate_limit_per_ip=0, public_rate_limit_window_seconds=10)
    ) == Limits(ip=None, token=Policy("token", 30, 10))


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        (f"Bearer {TOKEN}", TOKEN),
        (f"bearer  {TOKEN}", TOKEN),
        ("Bearer nps_an-api-key", None),  # counted per address only
        (f"Basic {TOKEN}", None),
        (None, None),
    ],
)
def test_the_public_calls_token_is_the_bearer_one(
    authorization: str | None, token: str | None
) -> None:
    assert bearer_token(scope(authorization=authorization)) == token


def test_a_page_zone_finds_its_token_in_the_path() -> None:
    find = token_after("/s/")

    assert find(scope(f"/s/{TOKEN}")) == TOKEN
    assert find(scope(f"/s/{TOKEN}/dismiss")) == TOKEN
    assert find(scope("/s/not-a-token")) is None
