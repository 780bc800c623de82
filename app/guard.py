"""The public calls' guard: CORS and rate limits for /v1/public/*, in one pure ASGI middleware.

app.main adds it outermost, so it sees every request under the prefix before anything else does:
every public route is covered by construction, and so are that path's 401s, 404s, 405s and
413s. Nothing else gets CORS. A public call costs no statement of its own: it is counted in
memory (app.local_limits), and its Origin is answered by the statement that looks its token up
(an OriginCheck left in the scope); only a preflight, a refusal, or a call whose token no route
looked up asks it here (app.services.rate_limits.origin_allowed), and an answer it cannot ask
about (the database away) names no origin.

CORS, without credentials ever (Access-Control-Allow-Credentials is never sent): a preflight
carries no token, so it is answered for an origin that any workspace lists in `allowed_origins`;
the actual response names the origin in Access-Control-Allow-Origin only when the token's own
workspace lists it (or, for a request without a known token, any workspace), so a browser hands
no other workspace's answer to the page. Every response there says `Vary: Origin`.

Rate limits: per client IP (IPv6: per /64) and per invitation token, fixed windows shared by
every worker and host through PostgreSQL (app.local_limits says how exactly). The IP is counted
before the token is looked up (a guessed token's 401 counts), the token only while the IP is
within its quota. Past a quota the answer is 429 with
Retry-After; every answer carries the RateLimit and RateLimit-Policy fields
(draft-ietf-httpapi-ratelimit-headers). The client IP is the ASGI client: uvicorn puts the
forwarded one there when the peer is in NPS_FORWARDED_ALLOW_IPS.

The authenticated API (the rest of /v1/) is guarded here too, the same way: per API key and per
client IP, counted in the process and shared through the same table by the authentication
statement, and floods of wrong keys are kept off the database (a key that failed is a 401 from
memory; an address past NPS_API_FAILED_AUTH_PER_IP is a 429 for any key not seen to work lately).

A `Zone` is the seam for other public surfaces (the hosted survey page): its own prefix, where
its token is, whether it gets CORS, and how its 429 is rendered (HTML there).
"""

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.auth import CHALLENGE, UNKNOWN_KEY
from app.api.deps import utcnow
from app.config import Settings
from app.db import autocommit
from app.errors import (
    ProblemError,
    RateLimited,
    Unauthorized,
    infrastructure_problem,
    problem_response,
)
from app.local_limits import (
    FLUSH_SCOPE_KEY,
    ORIGIN_SCOPE_KEY,
    Flush,
    KeyCache,
    OriginCheck,
    Windows,
)
from app.routing import route_path
from app.services.invitation_tokens import hash_token, is_invitation_token
from app.services.keys import hash_key
from app.services.rate_limits import (
    Executor,
    Limits,
    Policy,
    Tally,
    client_key,
    driver_of,
    origin_allowed,
    token_key,
)

PUBLIC_PREFIX = "/v1/public/"
API_PREFIX = "/v1/"
# Refusals of wrong keys held back at once per process (each a sleeping coroutine).
MAX_PAUSED = 1000
ALLOW_METHODS = "GET, POST, PATCH"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key"
EXPOSE_HEADERS = "RateLimit, RateLimit-Policy, Retry-After"

# How the OpenAPI document describes them (app.api.docs adds them to every public operation).
RATE_LIMIT_DOCS: dict[str, Any] = {
    "RateLimit": {
        "description": 'what is left of each quota this request counted against, e.g. `"ip";'
        'r=117;t=42, "token";r=27;t=42`: r more requests within the next t seconds '
        "(draft-ietf-httpapi-ratelimit-headers)",
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'the quotas, e.g. `"ip";q=120;w=60, "token";q=30;w=60`: q requests per '
        "window of w seconds from one client IP (an IPv6 /64), and with one invitation token",
        "schema": {"type": "string"},
    },
}


@dataclass(frozen=True, slots=True)
class Counters:
    """Where the guard's own statements run (the CORS question where no look-up answered it,
    counts a request that rolled back did not share): a unit of work committed at once; and the
    clock of the windows."""

    begin: Callable[[], AbstractAsyncContextManager[Executor]]
    clock: Callable[[], datetime] = utcnow


def counters_on(engine: AsyncEngine) -> Counters:
    """On an autocommit connection of `engine`: each statement one round trip, committed at once."""
    return Counters(partial(autocommit, engine))


def counters_of(scope: Scope) -> Counters:
    """The lifespan's engine. Tests replace this through the app's dependency_overrides, as they
    replace the session."""
    return counters_on(scope["state"]["engine"])


def bearer_token(scope: Scope) -> str | None:
    """The invitation token sent as `Authorization: Bearer npsi_...`, if one was."""
    scheme, _, credential = Headers(scope=scope).get("authorization", "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not is_invitation_token(credential):
        return None
    return credential


def token_after(prefix: str) -> Callable[[Scope], str | None]:
    """The invitation token as the path segment after `prefix` (`/s/{token}`)."""

    def token(scope: Scope) -> str | None:
        segment = route_path(scope).removeprefix(prefix).split("/", 1)[0]
        return segment if is_invitation_token(segment) else None

    return token


Refusal = Callable[[RateLimited], ASGIApp]


@dataclass(frozen=True, slots=True)
class Zone:
    """Paths the guard watches: under `prefix`, the token found by `token`, CORS or not, and a
    429 rendered by `refuse` (problem+json by default)."""

    prefix: str
    token: Callable[[Scope], str | None]
    cors: bool
    refuse: Refusal = problem_response


PUBLIC_API = Zone(PUBLIC_PREFIX, bearer_token, cors=True)


def limits_from(settings: Settings) -> Limits:
    window = settings.public_rate_limit_window_seconds
    per_ip, per_token = settings.public_rate_limit_per_ip, settings.public_rate_limit_per_token
    return Limits(
        ip=Policy("ip", per_ip, window) if per_ip else None,
        token=Policy("token", per_token, window) if per_token else None,
    )


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """The authenticated API's policies; None: that limit is off."""

    key: Policy | None
    ip: Policy | None
    failures: Policy | None


def api_limits_from(settings: Settings) -> ApiLimits:
    window = settings.api_rate_limit_window_seconds
    per_key, per_ip = settings.api_rate_limit_per_key, settings.api_rate_limit_per_ip
    failures = settings.api_failed_auth_per_ip
    return ApiLimits(
        key=Policy("key", per_key, window) if per_key else None,
        ip=Policy("ip", per_ip, window) if per_ip else None,
        failures=Policy("failed-auth", failures, window) if failures else None,
    )


def api_key_credential(scope: Scope) -> str | None:
    """The API key sent as `Authorization: Bearer <key>` (anything but an invitation token)."""
    raw = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
    scheme, _, credential = raw.decode("latin-1").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or is_invitation_token(credential):
        return None
    return credential


def rate_limit_headers(result: Tally) -> dict[str, str]:
    """RateLimit-Policy and RateLimit (structured-field lists) for the policies counted."""
    if not result.usages:
        return {}
    return {
        "RateLimit-Policy": ", ".join(
            f'"{u.policy.name}";q={u.policy.quota};w={u.policy.window}' for u in result.usages
        ),
        "RateLimit": ", ".join(
            f'"{u.policy.name}";r={u.remaining};t={u.seconds_left}' for u in result.usages
        ),
    }


def refusal(result: Tally, headers: dict[str, str]) -> RateLimited:
    """The 429 for a tally over a quota: Retry-After is the end of the last violated window."""
    exceeded = result.exceeded
    wait = max(u.seconds_left for u in exceeded)
    names = [u.policy.name for u in exceeded]
    what = {
        "ip": "from this address",
        "token": "with this invitation token",
        "key": "with this API key",
        "failed-auth": "with unknown API keys from this address",
    }
    reasons = " and ".join(what.get(name, f"under {name}") for name in names)
    return RateLimited(
        f"too many requests {reasons}; retry in {wait} second{'' if wait == 1 else 's'}",
        violated=names,
        headers={**headers, "Retry-After": str(wait)},
    )


class PublicGuard:
    """CORS and rate limits for the zones' paths (module doc); anything else passes untouched."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api: FastAPI,
        settings: Settings,
        zones: Sequence[Zone] = (PUBLIC_API,),
    ) -> None:
        self.app = app
        self.api = api
        self.limits = limits_from(settings)
        self.max_age = str(settings.cors_max_age_seconds)
        self.zones = tuple(zones)
        self.api_limits = api_limits_from(settings)
        self.windows = Windows(flush_every=settings.rate_limit_flush_seconds)
        self.keys = KeyCache()
        self.refusal_delay = settings.api_refusal_delay_seconds
        self.paused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        zone = next((z for z in self.zones if path.startswith(z.prefix)), None)
        if zone is not None:
            await self._zone(zone, scope, receive, send)
        elif path.startswith(API_PREFIX):
            await self._api(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _zone(self, zone: Zone, scope: Scope, receive: Receive, send: Send) -> None:
        """A public call: its address and token counted in memory (module doc), its Origin
        answered by the statement that looks its token up, or by one of its own here when no
        route looks it up (a preflight, a refusal, a request without a token)."""
        request = Headers(scope=scope)
        origin = request.get("origin") if zone.cors else None
        raw = zone.token(scope)
        token_hash = None if raw is None else hash_token(raw)
        client = scope.get("client")
        counters = self._counters(scope)
        now = counters.clock().timestamp()
        usages = []
        if self.limits.ip is not None:
            ip = client_key(client[0] if client else None)
            usages.append(self.windows.hit(ip, self.limits.ip, now))
        # The token only while the address is within its quota: a flood from one address
        # counts no guessed token.
        address_over = any(u.exceeded for u in usages)
        if token_hash is not None and self.limits.token is not None and not address_over:
            usages.append(self.windows.hit(token_key(token_hash), self.limits.token, now))
        result = Tally(tuple(usages))
        headers = rate_limit_headers(result)
        if zone.cors:
            headers["Vary"] = "Origin"
        check = None if origin is None else OriginCheck(origin, token_hash)
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in request
        if result.exceeded or preflight:
            # No route runs to look the token up: the origin is answered here.
            try:
                allowed = check is not None and await self._origin_allowed(counters, check)
            except Exception as exc:
                problem = infrastructure_problem(exc)
                if problem is None:
                    raise
                await problem_response(problem)(scope, receive, send)
                return
            if allowed and check is not None:
                _allow(headers, check.origin)
            if result.exceeded:
                await zone.refuse(refusal(result, headers))(scope, receive, send)
                return
            if allowed:
                await self._preflight(headers)(scope, receive, send)
                return
            # A preflight of an origin nobody lists goes on to the plain OPTIONS answer.
            await self.app(scope, receive, _adding(headers, send))
            return
        # The counts to share ride on the token's look-up, or are written alone once the
        # call is answered when none ran (no token sent, a 401 that rolled back).
        flush = self.windows.take(now)
        if flush is not None:
            scope[FLUSH_SCOPE_KEY] = flush
        if check is not None:
            scope[ORIGIN_SCOPE_KEY] = check

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and flush is not None:
                # The request's transaction is over by now: counts it did not commit are
                # shared before the answer leaves, so the next call, wherever it goes, sees them.
                await self._share_alone(counters, flush)
            if message["type"] == "http.response.start" and check is not None:
                if check.allowed is None:
                    # The route never looked the token up (none sent, an unknown path, a
                    # body too large): asked here. Unanswerable, no page may read the answer.
                    try:
                        check.allowed = await self._origin_allowed(counters, check)
                    except Exception as exc:
                        if infrastructure_problem(exc) is None:
                            raise
                        check.allowed = False
                if check.allowed:
                    _allow(headers, check.origin)
            await _adding(headers, send)(message)

        try:
            await self.app(scope, receive, sending)
            if flush is not None:  # no answer was sent (a client gone): shared now
                await self._share_alone(counters, flush)
        finally:
            if flush is not None:
                flush.settle()

    async def _share_alone(self, counters: Counters, flush: Flush) -> None:
        """A flush whose request did not commit it, written on its own (Flush.share_alone); if
        that fails too, it goes with the next flush."""
        if flush.state not in ("taken", "undone"):
            return
        try:
            async with counters.begin() as executor:
                await flush.share_alone(await driver_of(executor))
        except Exception as exc:
            if infrastructure_problem(exc) is None:
                raise

    def _counters(self, scope: Scope) -> Counters:
        counters: Counters = self.api.dependency_overrides.get(counters_of, counters_of)(scope)
        return counters

    async def _origin_allowed(self, counters: Counters, check: OriginCheck) -> bool:
        async with counters.begin() as executor:
            return await origin_allowed(executor, check.origin, check.token_hash)

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The authenticated API: counted in memory (module doc), refused before any look-up
        when a key failed lately or its address failed too often."""
        limits = self.api_limits
        now = self._clock(scope)().timestamp()
        credential = api_key_credential(scope)
        client = scope.get("client")
        ip = client_key(client[0] if client else None)
        key_hash = None if credential is None else hash_key(credential)
        known = key_hash is not None and self.keys.is_good(key_hash)
        looked_up = False  # counted as a look-up of a key not known to work (failed-auth)
        if key_hash is not None and not known:
            refusal_ = self._unknown_key(key_hash, ip, now)
            if refusal_ is not None:
                await self._pause()
                await problem_response(refusal_)(scope, receive, send)
                return
            looked_up = self.api_limits.failures is not None
        usages = []
        if limits.ip is not None:
            usages.append(self.windows.hit(f"api-{ip}", limits.ip, now))
        if known and limits.key is not None and key_hash is not None:
            usages.append(self.windows.hit(f"key:{key_hash[:16].hex()}", limits.key, now))
        result = Tally(tuple(usages))
        headers = rate_limit_headers(result)
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        if result.exceeded:
            await problem_response(refusal(result, headers))(scope, receive, send)
            return
        flush: Flush | None = None
        if key_hash is not None:
            flush = self.windows.take(now)
            if flush is not None:
                scope[FLUSH_SCOPE_KEY] = flush
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if flush is not None:  # as in _zone: shared before the answer leaves
                    await self._share_alone(self._counters(scope), flush)
                if raw_headers:  # the app sets no RateLimit field of its own
                    message["headers"] = [*message.get("headers", ()), *raw_headers]
            await send(message)

        try:
            await self.app(scope, receive, sending)
            if flush is not None:
                await self._share_alone(self._counters(scope), flush)
        finally:
            if flush is not None:
                flush.settle()
        if key_hash is None or status == 0:
            return
        if status == 401:  # only authentication answers 401 there
            self.keys.fail(key_hash, now)
        elif not known:
            self.keys.succeed(key_hash)
            if looked_up and self.api_limits.failures is not None:
                # The key worked: its look-up was no failure (an integration's several keys
                # from one address never use up the failure quota).
                self.windows.refund(f"fail-{ip}", self.api_limits.failures, now)

    def _unknown_key(self, key_hash: bytes, ip: str, now: float) -> ProblemError | None:
        """A key not known to work here: a 401 when it failed lately, a 429 when its address
        looked up too many such keys in this window (each look-up counts, before it runs, so
        concurrent ones cannot overshoot), else None: look it up."""
        if self.keys.is_failed(key_hash, now):
            return Unauthorized(UNKNOWN_KEY, headers=CHALLENGE)
        failures = self.api_limits.failures
        if failures is None:
            return None
        usage = self.windows.hit(f"fail-{ip}", failures, now)
        if not usage.exceeded:
            return None
        refused = Tally((usage,))
        return refusal(refused, rate_limit_headers(refused))

    async def _pause(self) -> None:
        """Refusals of wrong keys are answered after NPS_API_REFUSAL_DELAY_SECONDS: a client
        that waits for each answer, as brute-force tools do, then sends a few a second instead
        of thousands. Bounded: past MAX_PAUSED refusals in flight the rest are answered at once."""
        if self.refusal_delay <= 0 or self.paused >= MAX_PAUSED:
            return
        self.paused += 1
        try:
            await asyncio.sleep(self.refusal_delay)
        finally:
            self.paused -= 1

    def _clock(self, scope: Scope) -> Callable[[], datetime]:
        override = self.api.dependency_overrides.get(counters_of)
        return utcnow if override is None else override(scope).clock

    def _preflight(self, headers: dict[str, str]) -> Response:
        allowed = {
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": self.max_age,
        }
        return Response(status_code=204, headers={**headers, **allowed})


def _allow(headers: dict[str, str], origin: str) -> None:
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS


def _adding(headers: dict[str, str], send: Send) -> Send:
    """`send`, with `headers` added to the response's start (Vary merged with the app's)."""

    async def adding(message: Message) -> None:
        if message["type"] == "http.response.start":
            target = MutableHeaders(scope=message)
            for name, value in headers.items():
                if name == "Vary":
                    target.add_vary_header(value)
                else:
                    target[name] = value
        await send(message)

    return adding
