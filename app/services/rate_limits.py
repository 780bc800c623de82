"""Rate limits of the public calls: requests counted per client IP and per invitation token in
fixed windows shared by every API worker and host through PostgreSQL (the UNLOGGED
rate_limit_windows), and the CORS question of a public call.

The counting itself is app.local_limits': each process counts in memory and shares its counts
through rate_limit_windows in the statement that looks the caller up (an API key's, or an
invitation token's), as the API's limits are. Until migration 0008's function was retired from
counting, every public call ran a statement of its own on an autocommit connection for it: a
second pooled connection, a round trip, and the row of one busy address updated by every call
from it, about a tenth of a public answer's CPU.

The CORS question (`origin_allowed`) is the function rate_limit_tally's with nothing to count:
listed by the token's workspace or, when the request carries no known token (a preflight never
does), by any workspace. The token look-up asks it in its own statement (app.services.
invitations.token_holder); app.guard asks it alone only where no route looks a token up.
"""

import ipaddress
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import delete
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
    """The policies one request was counted against, with their counts."""

    usages: tuple[Usage, ...]

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


# rate_limit_tally (migration 0008) with nothing to count: whether the origin may read the
# answer (listed by the token's workspace, or, without a known token, by any workspace). The
# function once counted every public call too; the counts are kept in each process now
# (app.local_limits) and its counting arguments are always NULL here.
ORIGIN_ALLOWED_SQL = (
    "(SELECT origin_allowed "
    "FROM rate_limit_tally(NULL, NULL, NULL, NULL, NULL, {origin}, {token_hash}))"
)
_ORIGIN = (
    f"SELECT {ORIGIN_ALLOWED_SQL.format(origin='$1::text', token_hash='$2::bytea')} AS allowed"
)


@dataclass(frozen=True, slots=True)
class Limits:
    """The policies in force; None: that limit is off."""

    ip: Policy | None
    token: Policy | None


async def driver_of(executor: Executor) -> Any:
    """The asyncpg connection of a session (in its transaction) or of an autocommit
    connection (app.guard's, where each statement commits on its own)."""
    if isinstance(executor, AsyncSession):
        return await driver(executor)
    raw = (await executor.get_raw_connection()).driver_connection
    assert raw is not None
    return raw


async def origin_allowed(executor: Executor, origin: str, token_hash: bytes | None) -> bool:
    """Whether `origin` may read the answer to a call with this token (any token: None)."""
    conn = await driver_of(executor)
    return bool(await conn.fetchval(_ORIGIN, origin, token_hash))


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
