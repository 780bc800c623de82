"""Invitation helpers: issue over HTTP, call the public API with a token, and write or change an
invitation's row straight in the database (lapsed, answered long ago; created at a given instant)
for states a test needs but does not test."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from app.db import session_scope
from app.errors import rfc3339
from app.models import Invitation, Stakeholder, Unsubscribe
from tests.support.api import get_json
from tests.support.harness import Tenant

PUBLIC = "/v1/public"
EDIT_WINDOW = timedelta(minutes=30)  # how long an answer's comment and attributes can change


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def public_call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    token: str,
    *,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A call to /v1/public/{path} with the invitation token instead of the client's API key."""
    return await client.request(
        method, f"{PUBLIC}/{path}", json=json, headers={**bearer(token), **(headers or {})}
    )


async def answer(
    client: httpx.AsyncClient, token: str, body: dict[str, Any], *, status: int = 201
) -> dict[str, Any]:
    """POST /v1/public/answers with the token; the answer's body, after checking its status."""
    r = await public_call(client, "POST", "answers", token, json=body)
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


async def get_row(tenant: Tenant, invitation_id: str) -> Invitation:
    async with session_scope(tenant.db.sessionmaker) as session:
        row = await session.get(Invitation, (tenant.id, uuid.UUID(invitation_id)))
        assert row is not None
        return row


def parse(moment: str | None) -> datetime | None:
    return None if moment is None else datetime.fromisoformat(moment)


async def invite(
    client: httpx.AsyncClient,
    stakeholder_id: str = "p1",
    *,
    survey: str = "relationship",
    channel: str = "email",
    status: int = 201,
    **extra: Any,
) -> dict[str, Any]:
    body = {"stakeholder_id": stakeholder_id, "survey": survey, "channel": channel, **extra}
    r = await client.post("/v1/invitations", json=body)
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


async def people(tenant: Tenant, *ids: str, account_id: str = "acme") -> None:
    """An account (when new) and stakeholders of it."""
    await tenant.db.account(account_id)
    for sid in ids:
        await tenant.db.stakeholder(sid, account_id)


async def set_row(tenant: Tenant, invitation_id: str, **values: Any) -> None:
    async with session_scope(tenant.db.sessionmaker) as session:
        await session.execute(
            update(Invitation)
            .where(
                Invitation.workspace_id == tenant.id,
                Invitation.id == uuid.UUID(invitation_id),
            )
            .values(**values)
        )


async def add_invitation(
    tenant: Tenant,
    stakeholder_id: str,
    created_at: datetime,
    *,
    survey: str = "relationship",
    channel: str = "email",
    status: str = "issued",
    expires_at: datetime | None = None,
    account_id: str | None = None,
    **values: Any,
) -> str:
    """An invitation row (no token) of a registered stakeholder, at their current account unless
    `account_id` says otherwise; `values` are further columns (opened_at, answered_at, ...).
    Its id."""
    async with session_scope(tenant.db.sessionmaker) as session:
        if account_id is None:
            account_id = await session.scalar(
                select(Stakeholder.account_id).where(
                    Stakeholder.workspace_id == tenant.id, Stakeholder.id == stakeholder_id
                )
            )
        row = Invitation(
            workspace_id=tenant.id,
            id=uuid.uuid4(),
            stakeholder_id=stakeholder_id,
            account_id=account_id,
            survey=survey,
            channel=channel,
            status=status,
            expires_at=expires_at,
            created_at=created_at,
            updated_at=created_at,
            **values,
        )
        session.add(row)
    return str(row.id)


async def unsubscribe(tenant: Tenant, stakeholder_id: str) -> None:
    async with session_scope(tenant.db.sessionmaker) as session:
        session.add(Unsubscribe(workspace_id=tenant.id, stakeholder_id=stakeholder_id))


def suppressed(body: dict[str, Any]) -> tuple[str, datetime | None]:
    """The rule and until of a suppressed invitation, after checking it carries no token."""
    assert body["status"] == "suppressed", body
    assert (body["token"], body["url"], body["expires_at"]) == (None, None, None), body
    return body["suppression"]["rule"], parse(body["suppression"]["until"])


async def invite_decision_maker(
    tenant: Tenant, sid: str = "p1", *, new_account: bool = True, **extra: Any
) -> dict[str, Any]:
    """An executive decision maker in Finance at acme (created with them unless it exists),
    invited; the invitation as issued (with its token)."""
    if new_account:
        await tenant.db.account("acme")
    await tenant.db.stakeholder(
        sid, "acme", role="decision_maker", job_level="executive", department="Finance"
    )
    return await invite(tenant.client, sid, **extra)


async def define_support_catalog(tenant: Tenant, survey: str = "relationship") -> None:
    """A definition of `survey` whose catalog rates support 1-5."""
    body = {"attributes": [{"key": "support", "label": "Support", "scale": 5}]}
    r = await tenant.client.put(f"/v1/surveys/{survey}", json=body)
    assert r.status_code == 201, r.text


async def read_invitation(tenant: Tenant, invitation_id: str) -> dict[str, Any]:
    """GET /v1/invitations/{id} with the tenant's API key."""
    return await get_json(tenant.client, f"/v1/invitations/{invitation_id}")


def expected_answer(made: dict[str, Any], given: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The answer body: the response's id and content, when it was given, until when editable."""
    answered_at = parse(given["answered_at"])
    assert answered_at is not None
    return {
        "id": given["id"],
        "invitation_id": made["id"],
        "score": 9,
        "comment": None,
        "attributes": {},
        "answered_at": given["answered_at"],
        "editable_until": rfc3339(answered_at + EDIT_WINDOW),
        **fields,
    }
