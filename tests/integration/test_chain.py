"""The latest-answer chain stays in step with the rows, and scores read off it equal the sort.

Random data on purpose: answers arrive out of order (late, older answers), share submitted_at
instants, come singly and in batches, and are excluded and included again.
"""

import asyncio
import itertools
import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Role
from app.scoring import Method
from app.services.chain import chain_defects
from app.services.counting import count
from app.services.selection import Dimension, Filters, Selection, Weighting, Window
from tests.support.clock import START
from tests.support.harness import Tenant

ROLES = [r.value for r in Role]
CHAINED_METHODS = [
    Method.LATEST_PER_STAKEHOLDER,
    Method.ROLE_WEIGHTED,
    Method.DECISION_MAKER_FIRST,
    Method.ACCOUNT_AS_UNIT,
]
WEIGHTS = Weighting(
    role={"decision_maker": 3.0, "influencer": 2.0, "user": 1.0, "other": 0.5},
    job_level={"executive": 2.0},
)


async def _seed(tenant: Tenant, rnd: random.Random) -> list[str]:
    client = tenant.client
    for a in range(3):
        r = await client.put(f"/v1/accounts/acct{a}", json={"annual_revenue": str(a * 1000)})
        assert r.status_code == 201, r.text
    people = [f"p{i}" for i in range(12)]
    for person in people:
        body = {"account_id": f"acct{rnd.randrange(3)}", "role": rnd.choice(ROLES)}
        r = await client.put(f"/v1/stakeholders/{person}", json=body)
        assert r.status_code == 201, r.text
    # A few shared instants make ties on submitted_at common.
    instants = [START + timedelta(days=rnd.randrange(200)) for _ in range(40)]
    answers: list[dict[str, Any]] = [
        {
            "stakeholder_id": rnd.choice(people),
            "score": rnd.randrange(11),
            "submitted_at": rnd.choice(instants).isoformat(),
            "survey": rnd.choice(["q1", "q2"]),
        }
        for _ in range(240)
    ]
    rnd.shuffle(answers)  # arrival order unrelated to submitted_at
    ids: list[str] = []
    position = 0
    while position < len(answers):
        size = rnd.choice([1, 1, 5, 30])
        chunk = answers[position : position + size]
        position += size
        if size == 1:
            r = await client.post("/v1/responses", json=chunk[0])
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        else:
            r = await client.post("/v1/responses/batch", json={"responses": chunk})
            assert r.status_code == 200, r.text
            ids += [result["id"] for result in r.json()["results"]]
    return ids


async def _toggle_exclusions(tenant: Tenant, rnd: random.Random, ids: list[str]) -> None:
    excluded = rnd.sample(ids, 40)
    for response_id in excluded:
        body = {"excluded": True, "reason": "test"}
        r = await tenant.client.patch(f"/v1/responses/{response_id}", json=body)
        assert r.status_code == 200, r.text
    for response_id in excluded[:15]:
        r = await tenant.client.patch(f"/v1/responses/{response_id}", json={"excluded": False})
        assert r.status_code == 200, r.text


def _windows(rnd: random.Random) -> list[Window]:
    if rnd.random() < 0.3:  # back to back, like a trend's buckets
        bounds = sorted(START + timedelta(days=d) for d in rnd.sample(range(-10, 210), 6))
        return [Window(a, b) for a, b in itertools.pairwise(bounds)]
    windows = []
    for _ in range(rnd.choice([1, 1, 4])):
        start = START + timedelta(days=rnd.randrange(-10, 190), hours=rnd.randrange(24))
        windows.append(Window(start, start + timedelta(days=rnd.randrange(1, 120))))
    return windows


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_chain_scores_equal_the_sorted_computation(
    tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession], seed: int
) -> None:
    rnd = random.Random(seed)
    ids = await _seed(tenant, rnd)
    async with sessionmaker() as session:
        assert await chain_defects(session, tenant.id) == 0
    await _toggle_exclusions(tenant, rnd, ids)

    async with sessionmaker() as session:
        assert await chain_defects(session, tenant.id) == 0
        for _ in range(40):
            method = rnd.choice(CHAINED_METHODS)
            portfolio = method is Method.ACCOUNT_AS_UNIT
            dimensions = rnd.choice(
                [(), (Dimension.SEGMENT,)]
                if portfolio
                else [(), (Dimension.ROLE,), (Dimension.ACCOUNT,), (Dimension.SURVEY,)]
            )
            filters = Filters(
                role=None if portfolio else rnd.choice([None, None, Role.USER]),
                account_id=None if portfolio else rnd.choice([None, None, "acct1"]),
            )
            selection = Selection(
                _windows(rnd),
                filters,
                method,
                WEIGHTS if method is Method.ROLE_WEIGHTED or rnd.random() < 0.3 else None,
                by_revenue=portfolio and rnd.random() < 0.5,
            )
            chained = await count(session, tenant.id, selection, dimensions)
            sorted_ = await count(session, tenant.id, selection, dimensions, use_chain=False)
            assert chained == sorted_, (method, selection, dimensions)


async def test_a_late_older_answer_does_not_displace_the_latest(
    tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    client = tenant.client
    await client.put("/v1/accounts/a", json={})
    await client.put("/v1/stakeholders/p", json={"account_id": "a"})
    for day, score in ((10, 10), (30, 0), (20, 8)):  # day 20 arrives last
        body = {
            "stakeholder_id": "p",
            "score": score,
            "submitted_at": (START + timedelta(days=day)).isoformat(),
        }
        r = await client.post("/v1/responses", json=body)
        assert r.status_code == 201, r.text

    async with sessionmaker() as session:
        assert await chain_defects(session, tenant.id) == 0
        selection = Selection(
            [Window(START, START + timedelta(days=25)), Window(START, START + timedelta(days=40))],
            Filters(),
            Method.LATEST_PER_STAKEHOLDER,
        )
        cells = await count(session, tenant.id, selection)
    # Up to day 25 the latest is day 20's 8 (passive); up to day 40, day 30's 0 (detractor).
    assert {
        k: (c.tally.promoters, c.tally.passives, c.tally.detractors) for k, c in cells.items()
    } == {
        (0,): (0, 1, 0),
        (1,): (0, 0, 1),
    }


async def test_other_workspaces_chains_are_apart(
    tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session:
        assert await chain_defects(session, uuid.uuid4()) == 0


async def test_deleting_an_account_relinks_people_who_answered_there_and_moved(
    tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    client = tenant.client
    for account in ("a", "b"):
        await client.put(f"/v1/accounts/{account}", json={})

    async def answer(account: str, day: int, score: int) -> None:
        r = await client.put("/v1/stakeholders/p", json={"account_id": account})
        assert r.status_code in (200, 201), r.text
        body = {
            "stakeholder_id": "p",
            "score": score,
            "submitted_at": (START + timedelta(days=day)).isoformat(),
        }
        r = await client.post("/v1/responses", json=body)
        assert r.status_code == 201, r.text

    await answer("b", 10, 10)
    await answer("a", 20, 0)  # p moved to a, answered, and moved back to b
    r = await client.put("/v1/stakeholders/p", json={"account_id": "b"})
    assert r.status_code == 200, r.text

    r = await client.delete("/v1/accounts/a")
    assert r.status_code == 204, r.text

    async with sessionmaker() as session:
        assert await chain_defects(session, tenant.id) == 0
    window = {"from": START.isoformat(), "to": (START + timedelta(days=60)).isoformat()}
    r = await client.get("/v1/nps", params=window)
    assert (r.json()["score"]["n"], r.json()["score"]["promoters"]) == (1, 1)


async def test_concurrent_exclusions_and_answers_of_one_person_never_deadlock(
    committed: Tenant,
) -> None:
    client = committed.client
    await client.put("/v1/accounts/a", json={})
    await client.put("/v1/stakeholders/p", json={"account_id": "a"})
    ids = []
    for day in range(20):
        body = {
            "stakeholder_id": "p",
            "score": day % 11,
            "submitted_at": (START + timedelta(days=day)).isoformat(),
        }
        r = await client.post("/v1/responses", json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])

    async def exclude(response_id: str) -> int:
        body = {"excluded": True, "reason": "test"}
        return (await client.patch(f"/v1/responses/{response_id}", json=body)).status_code

    async def late(day: int) -> int:
        body = {
            "stakeholder_id": "p",
            "score": 5,
            "submitted_at": (START + timedelta(days=day, hours=12)).isoformat(),
        }
        return (await client.post("/v1/responses", json=body)).status_code

    statuses = await asyncio.gather(
        *(exclude(i) for i in ids[::2]), *(late(day) for day in range(0, 20, 2))
    )

    assert sorted(set(statuses)) == [200, 201]
