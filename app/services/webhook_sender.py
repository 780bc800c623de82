"""One webhook attempt over HTTP: the body, its Standard Webhooks signature, and the POST.

The POST goes to the address the SSRF guard just checked (the Host header and TLS name stay
the URL's host), so a name re-pointed between the check and the connection cannot reach an
internal address. No redirect is followed (a 3xx fails the attempt), the whole attempt is
bounded by NPS_WEBHOOK_TIMEOUT_SECONDS, and only the first KiB of the answer is read.
"""

import asyncio
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from app.config import Settings
from app.errors import rfc3339
from app.services import ssrf

EXCERPT_BYTES = 1024
USER_AGENT = "nps-service-webhooks/1"
_SSL = httpx.create_ssl_context()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt gave: the status (None: no answer), how long it took, why it failed
    (None: a 2xx) and the start of the answer."""

    status_code: int | None
    latency_ms: int
    error: str | None
    excerpt: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def payload(kind: str, occurred_at: datetime, data: Mapping[str, Any]) -> bytes:
    """The body every attempt of an event sends: `{"type", "timestamp", "data"}`."""
    body = {"type": kind, "timestamp": rfc3339(occurred_at), "data": dict(data)}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secrets: Iterable[str], msg_id: str, timestamp: datetime, body: bytes) -> str:
    """`webhook-signature`: `v1,<base64 HMAC-SHA256 of id.timestamp.body>` per secret,
    space-separated (two during a rotation's overlap)."""
    text = body.decode()
    return " ".join(Webhook(secret).sign(msg_id, timestamp, text) for secret in secrets)


def signed_headers(
    secrets: Iterable[str], msg_id: str, timestamp: datetime, body: bytes
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature(secrets, msg_id, timestamp, body),
    }


def _excerpt(raw: bytes) -> str | None:
    if not raw:
        return None
    # PostgreSQL text holds no NUL; a cut multi-byte character becomes U+FFFD.
    return raw[:EXCERPT_BYTES].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _address_url(target: ssrf.Target, address: ssrf.IPAddress) -> str:
    host = f"[{address}]" if address.version == 6 else str(address)
    return target.parts._replace(netloc=f"{host}:{target.port}").geturl()


async def _post(
    target: ssrf.Target,
    address: ssrf.IPAddress,
    headers: dict[str, str],
    body: bytes,
    seconds: float,
) -> tuple[int, bytes]:
    default_port = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    host_header = host if target.port == default_port else f"{host}:{target.port}"
    async with (
        httpx.AsyncClient(
            verify=_SSL, follow_redirects=False, trust_env=False, timeout=seconds
        ) as client,
        client.stream(
            "POST",
            _address_url(target, address),
            content=body,
            headers={**headers, "host": host_header},
            extensions={"sni_hostname": target.host},
        ) as response,
    ):
        raw = b""
        async for chunk in response.aiter_raw():
            raw += chunk
            if len(raw) >= EXCERPT_BYTES:
                break
        return response.status_code, raw


async def attempt(
    url: str, secrets: list[str], msg_id: str, body: bytes, *, settings: Settings
) -> Outcome:
    """POST `body` to `url`, signed with each secret, and say how it went; never raises for
    anything the receiver or the network does."""
    started = time.monotonic()

    def outcome(status: int | None, error: str | None, raw: bytes = b"") -> Outcome:
        return Outcome(status, round((time.monotonic() - started) * 1000), error, _excerpt(raw))

    try:
        target = ssrf.parse_url(url, production=settings.env == "production")
        addresses = await ssrf.checked_addresses(
            target, allow_private=settings.webhooks_allow_private
        )
    except ssrf.RefusedUrl as exc:
        return outcome(None, f"refused: {exc}")
    headers = signed_headers(secrets, msg_id, datetime.now(UTC), body)
    limit = settings.webhook_timeout_seconds
    try:
        async with asyncio.timeout(limit):
            status, raw = await _post(target, addresses[0], headers, body, limit)
    except (TimeoutError, httpx.TimeoutException):
        return outcome(None, f"timed out after {limit:g} s")
    except httpx.HTTPError as exc:
        return outcome(None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__)
    if 300 <= status < 400:
        return outcome(status, f"HTTP {status}: redirects are not followed", raw)
    if not 200 <= status < 300:
        return outcome(status, f"HTTP {status}", raw)
    return outcome(status, None, raw)
