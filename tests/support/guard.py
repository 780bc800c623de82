"""The public calls' guard under test: apps with small rate limits and a clock of the test's,
clients that call from a given address and origin, and the CORS headers of an answer."""

from collections.abc import Callable
from datetime import datetime

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from tests.support.clock import START, Clock
from tests.support.harness import Tenant, build_app
from tests.support.invitations import invite

PUBLIC = "/v1/public/invitation"
ADDRESS = "203.0.113.7"
# Half a minute into a window of 60 seconds: its answers say t=30.
MID_WINDOW = START.replace(second=30)


def limited(*, per_ip: int = 100, per_token: int = 100, window: int = 60) -> Settings:
    return Settings(
        database_url="postgresql://unused@localhost/unused",
        public_rate_limit_per_ip=per_ip,
        public_rate_limit_per_token=per_token,
        public_rate_limit_window_seconds=window,
    )


def guarded_app(
    sessionmaker: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    settings: Settings,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    return build_app(sessionmaker, engine, settings=settings, clock=clock or Clock(MID_WINDOW))


def visitor(
    app: FastAPI, *, address: str = ADDRESS, origin: str | None = None
) -> httpx.AsyncClient:
    """A client calling from `address` (the ASGI client), with `Origin: origin` if given."""
    headers = {} if origin is None else {"Origin": origin}
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    return httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def issued_tokens(tenant: Tenant, count: int = 1) -> list[str]:
    """The tokens of `count` new invitations, of as many new stakeholders of a new account."""
    await tenant.db.account("acme")
    tokens = []
    for i in range(count):
        await tenant.db.stakeholder(f"p{i}", "acme")
        tokens.append((await invite(tenant.client, f"p{i}"))["token"])
    return tokens


async def allow_origins(tenant: Tenant, *origins: str) -> None:
    r = await tenant.client.patch("/v1/settings", json={"allowed_origins": list(origins)})
    assert r.status_code == 200, r.text


def cors_headers(r: httpx.Response) -> dict[str, str]:
    """The answer's Access-Control-* headers (an exact dict: a credentials one would show)."""
    return {k: v for k, v in r.headers.items() if k.startswith("access-control-")}
