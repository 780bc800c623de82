"""The direct-database builders store what ingest would, chains included."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import SurveyResponse
from app.services.chain import chain_defects
from tests.support.api import Answer, get_json, list_responses, post_answers
from tests.support.clock import at
from tests.support.harness import MakeTenant, Tenant

# Out of order, with ties on submitted_at, a stakeholder amended, answers excluded.
ANSWERS = [
    Answer("dana", "acme", 9, at(5), role="decision_maker", department="IT"),
    Answer("dana", "acme", 3, at(2), role="decision_maker"),
    Answer("lee", "globex", 7, at(4), role="user", job_level="manager", survey="q1"),
    Answer("dana", "acme", 10, at(9), role="influencer", department="Finance"),
    Answer("lee", "globex", 0, at(4), role="user", job_level="manager"),
    Answer("kim", "acme", 6, at(1)),
    Answer("kim", "acme", 8, at(3)),
]
EXCLUDED = {6}
# What asyncpg reads 'infinity' (a latest answer's superseded_at) as.
INFINITY = datetime.max  # noqa: DTZ901 (asyncpg reads it naive)


def stored(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The listed responses minus their ids and stamps, in a stable order."""
    fields = ("stakeholder_id", "account_id", "role", "job_level", "department", "score")
    more = ("submitted_at", "survey", "excluded")
    return sorted(tuple(r[f] for f in (*fields, *more)) for r in rows)


async def chain(
    sessionmaker: async_sessionmaker[AsyncSession], tenant: Tenant, stakeholder_id: str
) -> list[tuple[int, Any]]:
    async with sessionmaker() as session:
        result = await session.execute(
            select(SurveyResponse.score, SurveyResponse.superseded_at)
            .where(
                SurveyResponse.workspace_id == tenant.id,
                SurveyResponse.stakeholder_id == stakeholder_id,
                SurveyResponse.excluded.is_(False),
            )
            .order_by(SurveyResponse.submitted_at)
        )
        return [(score, superseded) for score, superseded in result.all()]


class TestAnswers:
    async def test_the_chain_is_in_step(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        ids = await tenant.db.answers(ANSWERS, excluded=EXCLUDED)
        assert len(set(ids)) == len(ANSWERS)
        async with sessionmaker() as session:
            assert await chain_defects(session, tenant.id) == 0
        assert await chain(sessionmaker, tenant, "dana") == [(3, at(5)), (9, at(9)), (10, INFINITY)]
        assert await chain(sessionmaker, tenant, "kim") == [(6, INFINITY)]

    async def test_a_second_call_relinks_the_earlier_rows(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await tenant.db.answers(ANSWERS[:3])
        await tenant.db.answers(ANSWERS[3:])
        async with sessionmaker() as session:
            assert await chain_defects(session, tenant.id) == 0
        assert await chain(sessionmaker, tenant, "dana") == [(3, at(5)), (9, at(9)), (10, INFINITY)]

    async def test_rows_are_what_ingest_stores(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        over_http = await make_tenant("over-http")
        await post_answers(over_http.client, ANSWERS)
        ids = await tenant.db.answers(ANSWERS)
        assert stored(await list_responses(tenant.client)) == stored(
            await list_responses(over_http.client)
        )
        for path in ("/v1/stakeholders", "/v1/accounts"):
            mine = (await get_json(tenant.client, path, limit=200))["data"]
            theirs = (await get_json(over_http.client, path, limit=200))["data"]
            assert [{**r, "created_at": 0, "updated_at": 0} for r in mine] == [
                {**r, "created_at": 0, "updated_at": 0} for r in theirs
            ]
        body = await get_json(tenant.client, f"/v1/responses/{ids[0]}")
        assert (body["stakeholder_id"], body["score"]) == ("dana", 9)

    async def test_exclusions_are_stored(self, tenant: Tenant) -> None:
        ids = await tenant.db.answers(ANSWERS, excluded=EXCLUDED)
        excluded = {r["id"] for r in await list_responses(tenant.client) if r["excluded"]}
        assert excluded == {ids[i] for i in EXCLUDED}


class TestRespond:
    async def test_answers_carry_the_stakeholder_and_link_the_chain(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await tenant.db.account("acme", industry="technology", annual_revenue="1000.50")
        await tenant.db.stakeholder("pat", role="user", job_level="manager", department="Ops")
        first = await tenant.db.respond("pat", (9, at(7)), (2, at(3)))
        [late] = await tenant.db.respond("pat", (5, at(1)), survey="q2")
        [out] = await tenant.db.respond("pat", (0, at(8)), excluded=True)
        async with sessionmaker() as session:
            assert await chain_defects(session, tenant.id) == 0
        assert await chain(sessionmaker, tenant, "pat") == [(5, at(3)), (2, at(7)), (9, INFINITY)]
        rows = {r["id"]: r for r in await list_responses(tenant.client)}
        assert set(rows) == {*first, late, out}
        assert {
            (r["account_id"], r["role"], r["job_level"], r["department"]) for r in rows.values()
        } == {("acme", "user", "manager", "Ops")}
        assert (rows[late]["survey"], rows[out]["excluded"]) == ("q2", True)
        account = await get_json(tenant.client, "/v1/accounts/acme")
        assert (account["industry"], account["annual_revenue"]) == ("technology", "1000.50")
