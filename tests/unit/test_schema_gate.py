"""SchemaGate under a slow first check: the requests that arrive meanwhile wait for it."""

import asyncio
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from app import startup
from app.migrate import head_revision
from app.startup import GATE_WAIT_SECONDS, READY_WITHIN_SECONDS, SchemaGate


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served"})


def _client(gate: SchemaGate) -> httpx.AsyncClient:
    async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
        await gate({**scope, "state": {"engine": None}}, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=with_state), base_url="http://t")


class SlowSchema:
    """The schema check, answering after `seconds` with `revision`; counts its calls."""

    def __init__(self, seconds: float, revision: Any) -> None:
        self.seconds, self.revision, self.calls = seconds, revision, 0

    async def __call__(self, engine: Any) -> Any:
        self.calls += 1
        await asyncio.sleep(self.seconds)
        return self.revision


async def test_requests_during_a_slow_first_check_wait_for_it_and_are_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process started under load answers its first check late: longer than the readiness
    probe's bound is no outage, and no request is told 'starting' while it runs."""
    slow = SlowSchema(READY_WITHIN_SECONDS + 0.4, head_revision())
    monkeypatch.setattr(startup, "_schema_revision", slow)
    async with _client(SchemaGate(_ok)) as client:
        first = asyncio.create_task(client.get("/v1/nps"))
        await asyncio.sleep(0.05)
        rest = await asyncio.gather(*(client.get("/v1/nps") for _ in range(5)))
        answers = [await first, *rest]
    assert [(r.status_code, r.text) for r in answers] == [(200, "served")] * 6
    assert slow.calls == 1  # one check, shared


async def test_a_check_slower_than_the_gate_s_bound_is_a_503_then_checked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(startup, "GATE_WAIT_SECONDS", 0.2)
    slow = SlowSchema(0.5, head_revision())
    monkeypatch.setattr(startup, "_schema_revision", slow)
    monkeypatch.setattr(startup, "RECHECK_SECONDS", 0.0)
    async with _client(SchemaGate(_ok)) as client:
        r = await client.get("/v1/nps")
        assert r.status_code == 503
        assert r.json()["detail"] == "the database did not answer within 0.2 s"
        slow.seconds = 0.0
        await asyncio.sleep(0.01)
        assert (await client.get("/v1/nps")).status_code == 200
    assert slow.calls == 2


async def test_a_schema_behind_head_stays_shut_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(startup, "_schema_revision", SlowSchema(0.0, "0001"))
    async with _client(SchemaGate(_ok)) as client:
        r = await client.get("/v1/nps")
    assert r.status_code == 503
    assert "run `nps migrate`" in r.json()["detail"]


def test_the_gate_waits_longer_than_the_probe() -> None:
    assert GATE_WAIT_SECONDS > READY_WITHIN_SECONDS


async def test_with_a_bootstrap_key_it_opens_once_the_key_is_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between the migrations and the bootstrap storing NPS_BOOTSTRAP_API_KEY, a call with that
    key would be a 401, which no client retries: the gate says 'starting' (503) instead."""
    monkeypatch.setattr(startup, "_schema_revision", SlowSchema(0.0, head_revision()))
    monkeypatch.setattr(startup, "RECHECK_SECONDS", 0.0)
    stored = False

    async def key_stored(engine: Any, raw: str) -> bool:
        assert raw == "nps_bootstrap"
        return stored

    monkeypatch.setattr(startup, "_key_stored", key_stored)
    async with _client(SchemaGate(_ok, bootstrap_key="nps_bootstrap")) as client:
        pending = await client.get("/v1/accounts")
        assert pending.status_code == 503
        assert pending.json()["detail"] == startup.BOOTSTRAP_PENDING
        assert pending.headers["retry-after"] == "1"
        stored = True
        await asyncio.sleep(0.01)
        assert (await client.get("/v1/accounts")).status_code == 200
