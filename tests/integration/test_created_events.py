"""response.created (and invitation.answered) from the one place every answer is stored
(app.services.ingest): one event per stored response, none for a repeat, a refusal or a
rolled-back request, and the worker opens the cases they call for."""

from typing import Any

import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.models import Job, SurveyResponse
from app.schemas import ResponseCreate
from app.services import ingest
from tests.support.api import get_json
from tests.support.cases import run_worker, stored_events
from tests.support.clock import ago, stamp
from tests.support.harness import Tenant
from tests.support.invitations import answer, invite_decision_maker
from tests.support.problems import problem

WHEN = ago(hours=3).replace(microsecond=0)


async def _people(tenant: Tenant) -> None:
    await tenant.db.account("acme")
    await tenant.db.stakeholder("p-1", role="decision_maker", job_level="executive")
    await tenant.db.stakeholder("p-2", role="user", department="Ops")


def _created(response_id: str, **over: Any) -> dict[str, Any]:
    return {
        "response_id": response_id,
        "external_id": None,
        "stakeholder_id": "p-1",
        "account_id": "acme",
        "score": 3,
        "category": "detractor",
        "survey": None,
        "channel": "api",
        "submitted_at": stamp(WHEN),
        "role": "decision_maker",
        "job_level": "executive",
        "department": None,
        **over,
    }


def _body(**over: Any) -> dict[str, Any]:
    return {"stakeholder_id": "p-1", "score": 3, "submitted_at": WHEN.isoformat(), **over}


class TestRecordResponse:
    async def test_a_stored_answer_emits_exactly_its_event(self, tenant: Tenant) -> None:
        await _people(tenant)

        r = await tenant.client.post("/v1/responses", json=_body(comment="slow", survey="q4"))

        assert r.status_code == 201, r.text
        [event] = await stored_events(tenant)
        assert (event.type, event.data) == (
            "response.created",
            _created(r.json()["id"], survey="q4"),
        )
        assert "slow" not in str(event.data)

    async def test_a_repeated_external_id_emits_nothing_more(self, tenant: Tenant) -> None:
        await _people(tenant)
        body = _body(external_id="crm-1")

        first = await tenant.client.post("/v1/responses", json=body)
        again = await tenant.client.post("/v1/responses", json=body)
        other = await tenant.client.post("/v1/responses", json={**body, "score": 9})

        assert (first.status_code, again.status_code) == (201, 200)
        problem(other, 409)
        assert [e.data["external_id"] for e in await stored_events(tenant)] == ["crm-1"]

    async def test_a_refused_answer_emits_nothing(self, tenant: Tenant) -> None:
        await _people(tenant)

        r = await tenant.client.post("/v1/responses", json=_body(stakeholder_id="nobody"))

        problem(r, 422)
        assert await stored_events(tenant) == []

    async def test_a_rolled_back_request_emits_nothing(self, committed: Tenant) -> None:
        await _people(committed)

        async def request_that_fails() -> None:
            async with session_scope(committed.db.sessionmaker) as session:
                item = ResponseCreate.model_validate(_body())
                await ingest.record_response(session, committed.id, item, now=ago())
                raise RuntimeError("the request failed after the answer was stored")

        with pytest.raises(RuntimeError):
            await request_that_fails()

        assert await stored_events(committed) == []
        async with committed.db.sessionmaker() as session:
            assert (
                await session.scalar(
                    select(func.count()).select_from(Job).where(Job.workspace_id == committed.id)
                )
                == 0
            )
            assert (
                await session.scalar(
                    select(func.count())
                    .select_from(SurveyResponse)
                    .where(SurveyResponse.workspace_id == committed.id)
                )
                == 0
            )

    async def test_the_worker_opens_the_case_the_event_calls_for(self, tenant: Tenant) -> None:
        await _people(tenant)
        r = await tenant.client.post("/v1/responses", json=_body(submitted_at=ago().isoformat()))

        await run_worker(tenant)

        [case] = (await get_json(tenant.client, "/v1/cases"))["data"]
        detail = await get_json(tenant.client, f"/v1/cases/{case['id']}")
        assert [t["response_id"] for t in detail["responses"]] == [r.json()["id"]]


class TestRecordBatch:
    async def test_one_event_per_stored_item_none_for_refused_or_repeated(
        self, tenant: Tenant
    ) -> None:
        await _people(tenant)
        items = [
            _body(external_id="a"),
            _body(stakeholder_id="nobody"),
            _body(stakeholder_id="p-2", score=10),
            _body(external_id="a"),
        ]

        r = await tenant.client.post("/v1/responses/batch", json={"responses": items})

        assert r.status_code == 207, r.text
        results = r.json()["results"]
        assert [x["status"] for x in results] == [201, 422, 201, 200]
        created = await stored_events(tenant)
        assert [(e.type, e.data["response_id"]) for e in created] == [
            ("response.created", results[0]["id"]),
            ("response.created", results[2]["id"]),
        ]
        assert created[1].data == _created(
            results[2]["id"],
            stakeholder_id="p-2",
            score=10,
            category="promoter",
            role="user",
            job_level="other",
            department="Ops",
        )

    async def test_a_batch_storing_nothing_emits_nothing(self, tenant: Tenant) -> None:
        await _people(tenant)

        r = await tenant.client.post(
            "/v1/responses/batch", json={"responses": [_body(stakeholder_id="nobody")]}
        )

        assert r.status_code == 207, r.text
        assert await stored_events(tenant) == []


class TestPublicAnswer:
    async def test_an_answer_emits_response_created_and_invitation_answered(
        self, tenant: Tenant
    ) -> None:
        made = await invite_decision_maker(tenant)

        given = await answer(tenant.client, made["token"], {"score": 6, "comment": "meh"})
        await answer(tenant.client, made["token"], {"score": 6}, status=409)

        created, answered = await stored_events(tenant)
        assert (created.type, answered.type) == ("response.created", "invitation.answered")
        assert created.data["response_id"] == given["id"]
        assert (created.data["channel"], created.data["external_id"]) == (
            "email",
            f"invitation:{made['id']}",
        )
        assert answered.data == {**created.data, "invitation_id": made["id"]}
