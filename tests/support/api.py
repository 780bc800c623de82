"""Building and reading a workspace over HTTP, through the ingest path the service offers.

Tests of ingest (and anything whose setup must take that path) use these; tests whose setup
data is not what they test can use the direct database builders in tests.support.factories.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.support.clock import WINDOW

# One score per category, for answers whose exact value does not matter.
CATEGORY_SCORES = (10, 8, 3)

Status = int | tuple[int, ...]


def _expect(r: httpx.Response, status: Status) -> None:
    expected = status if isinstance(status, tuple) else (status,)
    assert r.status_code in expected, r.text


@dataclass(frozen=True)
class Answer:
    """One stakeholder's answer; the stakeholder (and its account) are registered inline."""

    stakeholder_id: str
    account_id: str
    score: int
    submitted_at: datetime
    role: str = "other"
    job_level: str = "other"
    department: str | None = None
    survey: str | None = None

    def item(self) -> dict[str, Any]:
        stakeholder: dict[str, Any] = {
            "id": self.stakeholder_id,
            "account_id": self.account_id,
            "role": self.role,
            "job_level": self.job_level,
            # Creates the account when it does not exist yet; an existing one is left unchanged.
            "account": {"name": self.account_id},
        }
        if self.department is not None:
            stakeholder["department"] = self.department
        body: dict[str, Any] = {
            "stakeholder": stakeholder,
            "score": self.score,
            "submitted_at": self.submitted_at.isoformat(),
        }
        if self.survey is not None:
            body["survey"] = self.survey
        return body


def answers_for(
    prefix: str,
    counts: tuple[int, int, int],
    when: datetime,
    *,
    account_id: str = "acme",
    role: str = "other",
    job_level: str = "other",
) -> list[Answer]:
    """P promoters, Pa passives and D detractors, each a new stakeholder, a second apart."""
    scores = [score for score, k in zip(CATEGORY_SCORES, counts, strict=True) for _ in range(k)]
    return [
        Answer(
            f"{prefix}-{i}",
            account_id,
            score,
            when + timedelta(seconds=i),
            role=role,
            job_level=job_level,
        )
        for i, score in enumerate(scores)
    ]


# Writing


async def put_account(
    client: httpx.AsyncClient,
    account_id: str,
    *,
    name: str | None = None,
    status: Status = 201,
    **fields: str | None,
) -> dict[str, Any]:
    """PUT an account named `name` (default: its id) with the fields that are not None."""
    body: dict[str, Any] = {"name": account_id if name is None else name}
    body |= {k: v for k, v in fields.items() if v is not None}
    r = await client.put(f"/v1/accounts/{account_id}", json=body)
    _expect(r, status)
    account: dict[str, Any] = r.json()
    return account


async def put_stakeholder(
    client: httpx.AsyncClient,
    stakeholder_id: str,
    account_id: str = "acme",
    *,
    status: Status = 201,
    **fields: str | None,
) -> dict[str, Any]:
    """PUT a stakeholder of `account_id` with the fields that are not None."""
    body: dict[str, Any] = {"account_id": account_id}
    body |= {k: v for k, v in fields.items() if v is not None}
    r = await client.put(f"/v1/stakeholders/{stakeholder_id}", json=body)
    _expect(r, status)
    stakeholder: dict[str, Any] = r.json()
    return stakeholder


async def post_response(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """POST one response; the stored response."""
    r = await client.post("/v1/responses", json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def respond(
    client: httpx.AsyncClient, stakeholder_id: str, score: int, submitted_at: datetime | None = None
) -> str:
    """POST one answer of a registered stakeholder (at `submitted_at`, else now); its id."""
    body: dict[str, Any] = {"stakeholder_id": stakeholder_id, "score": score}
    if submitted_at is not None:
        body["submitted_at"] = submitted_at.isoformat()
    response_id: str = (await post_response(client, body))["id"]
    return response_id


async def post_responses(client: httpx.AsyncClient, items: Sequence[dict[str, Any]]) -> list[str]:
    """Store every item in one batch; the response ids in item order."""
    r = await client.post("/v1/responses/batch", json={"responses": list(items)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stored"] == len(items)
    return [result["id"] for result in body["results"]]


async def post_answers(client: httpx.AsyncClient, answers: Sequence[Answer]) -> list[str]:
    """Store every answer in one batch; the response ids in order."""
    return await post_responses(client, [a.item() for a in answers])


async def set_excluded(
    client: httpx.AsyncClient, response_id: str, excluded: bool = True, reason: str = "test"
) -> None:
    """Exclude a response (with `reason`) or include it again."""
    body: dict[str, Any] = {"excluded": excluded}
    if excluded:
        body["reason"] = reason
    r = await client.patch(f"/v1/responses/{response_id}", json=body)
    assert r.status_code == 200, r.text


async def put_settings(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.put("/v1/settings", json=body)
    assert r.status_code == 200, r.text
    settings: dict[str, Any] = r.json()
    return settings


# Reading


async def get_json(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    r = await client.get(path, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def report(client: httpx.AsyncClient, path: str = "/v1/nps", **params: Any) -> dict[str, Any]:
    """A report endpoint over WINDOW unless the params say otherwise."""
    return await get_json(client, path, **{**WINDOW, **params})


async def list_responses(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """GET /v1/responses, all on one page (up to 200)."""
    page = await get_json(client, "/v1/responses", **{"limit": 200, **params})
    assert page["next_cursor"] is None
    data: list[dict[str, Any]] = page["data"]
    return data


async def count_responses(client: httpx.AsyncClient) -> int:
    """Every stored response of the workspace, across pages."""
    total, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor is not None:
            params["cursor"] = cursor
        page = await get_json(client, "/v1/responses", **params)
        total += len(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return total


def ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [row["id"] for row in r.json()["data"]]


def id_set(rows: list[dict[str, Any]]) -> set[str]:
    return {row["id"] for row in rows}


def without_stamps(body: dict[str, Any]) -> dict[str, Any]:
    """The body minus created_at/updated_at, which must be RFC 3339 instants with an offset."""
    rest = dict(body)
    for name in ("created_at", "updated_at"):
        assert datetime.fromisoformat(rest.pop(name)).tzinfo is not None
    return rest
