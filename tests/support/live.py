"""Setting up and reading the live server of the browser tests over its API, with the admin
key: a fresh stakeholder per test (the server's database lives for the whole session)."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.browser import LiveServer


@dataclass(frozen=True)
class Invited:
    stakeholder_id: str
    invitation_id: str
    token: str


@asynccontextmanager
async def admin(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
        yield client


async def _ok(r: httpx.Response, *statuses: int) -> Any:
    assert r.status_code in statuses, r.text
    return r.json() if r.content else None


async def define_survey(server: LiveServer, survey: str, body: dict[str, Any]) -> None:
    async with admin(server) as client:
        await _ok(await client.put(f"/v1/surveys/{survey}", json=body), 200, 201)


async def invite(
    server: LiveServer,
    *,
    survey: str = "relationship",
    channel: str = "email",
    role: str = "decision_maker",
    name: str = "Ada Lovelace",
) -> Invited:
    """A new stakeholder of acme with `role`, invited by `channel`."""
    sid = f"p-{uuid.uuid4().hex[:12]}"
    async with admin(server) as client:
        await _ok(await client.put("/v1/accounts/acme", json={"name": "Acme"}), 200, 201)
        person = {"account_id": "acme", "role": role, "name": name}
        await _ok(await client.put(f"/v1/stakeholders/{sid}", json=person), 201)
        body = {"stakeholder_id": sid, "survey": survey, "channel": channel}
        made = await _ok(await client.post("/v1/invitations", json=body), 201)
    return Invited(sid, made["id"], made["token"])


async def responses_of(server: LiveServer, stakeholder_id: str) -> list[dict[str, Any]]:
    async with admin(server) as client:
        page = await _ok(
            await client.get("/v1/responses", params={"stakeholder_id": stakeholder_id}), 200
        )
    data: list[dict[str, Any]] = page["data"]
    return data


async def invitation_of(server: LiveServer, invited: Invited) -> dict[str, Any]:
    async with admin(server) as client:
        found: dict[str, Any] = await _ok(
            await client.get(f"/v1/invitations/{invited.invitation_id}"), 200
        )
    return found
