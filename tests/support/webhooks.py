"""Webhook tests' helpers: DNS the test decides, endpoints registered over HTTP, and a real
HTTP receiver on a local port that records what it is sent."""

import base64
import ipaddress
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from standardwebhooks import Webhook

from app.config import Settings
from app.db import session_scope
from app.models import Job, WebhookAttempt, WebhookDelivery, WebhookEndpoint, Workspace
from app.services import events, ssrf
from app.services.deliveries import DELIVER_TASK
from app.worker import Worker
from tests.support.harness import Tenant, build_app, new_tenant

# Names the fake resolver knows (documentation and private ranges); anything else: NXDOMAIN.
PUBLIC_HOST = "hooks.example.com"
PUBLIC_ADDRESS = "93.184.215.14"
DNS: dict[str, list[str]] = {
    PUBLIC_HOST: [PUBLIC_ADDRESS],
    "crm.example.com": ["93.184.215.15", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "intranet.example.com": ["10.1.2.3"],
    "mixed.example.com": [PUBLIC_ADDRESS, "192.168.1.10"],
    "metadata.example.com": ["169.254.169.254"],
    "localhost": ["127.0.0.1"],
}


class FakeDns:
    """A resolver over a table the test may change (re-point a name: DNS rebinding)."""

    def __init__(self) -> None:
        self.table = {name: list(addresses) for name, addresses in DNS.items()}

    async def __call__(self, host: str, port: int) -> list[ssrf.IPAddress]:
        if host not in self.table:
            raise OSError(f"no such host {host}")
        return [ipaddress.ip_address(a) for a in self.table[host]]


def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    """The SSRF guard resolves through a FakeDns while the test runs (a test's fixture)."""
    fake = FakeDns()
    monkeypatch.setattr(ssrf, "RESOLVE", fake)
    return fake


async def register(
    client: httpx.AsyncClient, url: str = f"https://{PUBLIC_HOST}/nps", **fields: Any
) -> dict[str, Any]:
    """POST /v1/webhooks; the 201 answer (with its secret)."""
    r = await client.post("/v1/webhooks", json={"url": url, **fields})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def secret_bytes(secret: str) -> bytes:
    assert secret.startswith("whsec_"), secret
    return base64.b64decode(secret.removeprefix("whsec_"), validate=True)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What a local receiver was sent, and how it answers next (status and body)."""

    port: int
    received: list[Received] = field(default_factory=list)
    status: int = 204
    # A status of its own for some paths.
    statuses: dict[str, int] = field(default_factory=dict)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"


@contextmanager
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    """A real HTTP server on receiver.port, in a thread, while the block runs."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            receiver.received.append(
                Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
            )
            self.send_response(receiver.statuses.get(self.path, receiver.status))
            for name, value in receiver.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(receiver.body)))
            self.end_headers()
            self.wfile.write(receiver.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# Delivery on real commits: a worker that admits local receivers, and what it left behind.

WORKER = Settings(
    database_url="postgresql://unused@localhost/unused",
    webhooks_allow_private=True,
    webhook_timeout_seconds=2,
)
DATA = {"response_id": "r-1", "score": 3, "category": "detractor"}


@asynccontextmanager
async def hooks_tenant(engine: AsyncEngine, name: str = "hooks") -> AsyncIterator[Tenant]:
    """A tenant whose requests commit, on an app that admits local receivers; deleted after."""
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    tenant = await new_tenant(sessionmaker, build_app(sessionmaker, engine, settings=WORKER), name)
    try:
        yield tenant
    finally:
        await tenant.client.aclose()
        async with session_scope(sessionmaker) as session:
            await session.execute(delete(Workspace).where(Workspace.id == tenant.id))


async def emit(tenant: Tenant, kind: str = "response.created", **data: Any) -> uuid.UUID:
    async with session_scope(tenant.db.sessionmaker) as session:
        return await events.emit(session, tenant.id, kind, data or DATA)


async def drain(tenant: Tenant, settings: Settings = WORKER) -> None:
    await Worker(tenant.db.sessionmaker, settings).drain()


async def deliveries(tenant: Tenant) -> list[WebhookDelivery]:
    async with tenant.db.sessionmaker() as session:
        rows = await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.workspace_id == tenant.id)
            .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        )
        return list(rows)


async def attempts(tenant: Tenant) -> list[WebhookAttempt]:
    async with tenant.db.sessionmaker() as session:
        rows = await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.workspace_id == tenant.id)
            .order_by(WebhookAttempt.id)
        )
        return list(rows)


async def retries_due_now(tenant: Tenant) -> None:
    """The queued attempts become due, as if their wait had passed."""
    async with session_scope(tenant.db.sessionmaker) as session:
        await session.execute(
            update(Job)
            .where(Job.workspace_id == tenant.id, Job.task == DELIVER_TASK, Job.status == "queued")
            .values(run_at=func.now())
        )


async def set_endpoint(tenant: Tenant, endpoint_id: str, **values: Any) -> None:
    async with session_scope(tenant.db.sessionmaker) as session:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.workspace_id == tenant.id, WebhookEndpoint.id == endpoint_id)
            .values(**values)
        )


def verified(secret: str, received: Received) -> Any:
    """The body, after the receiver's own library checked its signature."""
    return Webhook(secret).verify(received.body, received.headers)
