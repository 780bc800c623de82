"""Rate limits of the public calls: requests counted per client IP and per invitation token in
fixed windows, in PostgreSQL (the UNLOGGED rate_limit_windows), so every API worker and host
counts into the same windows.

One statement per request (`tally`, calling the function rate_limit_tally of migration 0008)
counts the IP, then the token (only while the IP is within its quota, so a flood from one
address writes no row per guessed token), and answers the CORS question for the request's
Origin in the same round trip: listed by the token's workspace, or, when the request carries no
known token (a preflight never does), by any workspace. A function because its statements keep
their plans whatever a connection's plan_cache_mode (app.db): planning them afresh cost more
than running them. It runs on the driver (app.db.driver), as every public call counts.

It runs outside the request's transaction (app.guard gives it an autocommit connection): a
request that fails, a 401 for a guessed token above all, is counted all the same, and the row
lock of a busy address is held for one statement, not for a whole request.
"""

import ipaddress
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db import driver
from app.jobs import JobContext, task
from app.models import RateLimitWindow

Executor = AsyncConnection | AsyncSession

# An IPv6 client usually holds a whole /64: counting single addresses would let it rotate.
IPV6_PREFIX = 64


@dataclass(frozen=True, slots=True)
class Policy:
    """A quota of requests per fixed window of `window` seconds; `name` names it in the
    RateLimit and RateLimit-Policy header fields."""

    name: str
    quota: int
    window: int

    def window_start(self, now: datetime) -> datetime:
        start = math.floor(now.timestamp() / self.window) * self.window
        return datetime.fromtimestamp(start, UTC)

    def seconds_left(self, now: datetime) -> int:
        """Whole seconds until the window `now` is in ends (at least 1)."""
        end = self.window_start(now) + timedelta(seconds=self.window)
        return max(1, math.ceil((end - now).total_seconds()))


@dataclass(frozen=True, slots=True)
class Usage:
    """A policy's count in its current window, this request included."""

    policy: Policy
    hits: int
    seconds_left: int

    @property
    def remaining(self) -> int:
        return max(self.policy.quota - self.hits, 0)

    @property
    def exceeded(self) -> bool:
        return self.hits > self.policy.quota


@dataclass(frozen=True, slots=True)
class Tally:
    usages: tuple[Usage, ...]
    origin_allowed: bool

    @property
    def exceeded(self) -> tuple[Usage, ...]:
        return tuple(u for u in self.usages if u.exceeded)


@lru_cache(maxsize=4096)  # parsing an address cost more than the rest of the API's guard
def client_key(host: str | None) -> str:
    """The counter of a client address: an IPv4 address, or the /64 of an IPv6 one."""
    if host is None:
        return "ip:unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"ip:{host[:90]}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False)}"
    return f"ip:{address}"


def token_key(token_hash: bytes) -> str:
    return f"token:{token_hash.hex()}"


# rate_limit_tally (migration 0008): the IP's count, the token's (NULL when the IP is over its
# quota), and whether the origin may read the answer; a NULL argument skips its part.
_TALLY = text(
    "SELECT ip_hits, token_hits, origin_allowed FROM rate_limit_tally("
    ":ip_key, :ip_start, :ip_quota, :token_key, :token_start, :origin, :token_hash)"
)
_PARAMS = ("ip_key", "ip_start", "ip_quota", "token_key", "token_start", "origin", "token_hash")
# The same on the driver (app.db.driver): every public call runs it.
_TALLY_SQL = (
    "SELECT ip_hits, token_hits, origin_allowed FROM rate_limit_tally("
    "$1::text, $2::timestamptz, $3::integer, $4::text, $5::timestamptz, $6::text, $7::bytea)"
)


async def _tally_row(executor: Executor, params: dict[str, Any]) -> Any:
    """The function's one row: on the driver of a session or of an autocommit connection (as
    app.guard gives it), else through SQLAlchemy."""
    if isinstance(executor, AsyncSession):
        return await (await driver(executor)).fetchrow(_TALLY_SQL, *map(params.get, _PARAMS))
    sync = executor.sync_connection
    if sync is not None and sync.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        # Each statement its own transaction there, on the driver as through SQLAlchemy.
        raw = (await executor.get_raw_connection()).driver_connection
        assert raw is not None
        return await raw.fetchrow(_TALLY_SQL, *map(params.get, _PARAMS))
    return (await executor.execute(_TALLY, params)).one()._mapping


@dataclass(frozen=True, slots=True)
class Limits:
    """The policies in force; None: that limit is off."""

    ip: Policy | None
    token: Policy | None


async def tally(
    executor: Executor,
    *,
    limits: Limits,
    now: datetime,
    client: str,
    token_hash: bytes | None,
    origin: str | None,
) -> Tally:
    """Count this request for its `client` (a client_key) and the token whose hash is given;
    say whether `origin` may read the answer. One statement, none when there is nothing to
    count or ask."""
    ip, token = limits.ip, limits.token if token_hash is not None else None
    if ip is None and token is None and origin is None:
        return Tally((), origin_allowed=False)
    params = {
        "ip_key": None if ip is None else client,
        "ip_start": None if ip is None else ip.window_start(now),
        "ip_quota": None if ip is None else ip.quota,
        "token_key": None if token is None or token_hash is None else token_key(token_hash),
        "token_start": None if token is None else token.window_start(now),
        "origin": origin,
        "token_hash": None if origin is None else token_hash,
    }
    row = await _tally_row(executor, params)
    usages = [
        Usage(policy, hits, policy.seconds_left(now))
        for policy, hits in ((ip, row["ip_hits"]), (token, row["token_hits"]))
        if policy is not None and hits is not None  # no token hits: the IP was over its quota
    ]
    return Tally(tuple(usages), origin_allowed=bool(row["origin_allowed"]))


async def purge_expired(session: AsyncSession, *, before: datetime) -> int:
    """Delete the windows that started before `before`; how many."""
    result = await session.execute(
        delete(RateLimitWindow).where(RateLimitWindow.window_start < before)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


@task("rate_limits.purge", every=timedelta(minutes=5))
async def purge_old_windows(ctx: JobContext) -> None:
    # Windows that ended a whole window ago: a host whose clock lags by less still finds its own.
    # The API's windows are here too (app.local_limits): the longer of the two decides.
    settings = ctx.settings
    longest = max(settings.public_rate_limit_window_seconds, settings.api_rate_limit_window_seconds)
    window = timedelta(seconds=longest)
    await purge_expired(ctx.session, before=datetime.now(UTC) - 2 * window)
