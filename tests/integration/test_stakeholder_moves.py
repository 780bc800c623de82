"""`stakeholder.moved`, announced by the worker from `response.created` when a new answer puts
its stakeholder in another category than their previous counted answer: with from and to, the
role snapshot and the account's current score; once, whatever the job's repeats."""

from datetime import UTC, datetime
from typing import Any

from app.models import Event
from tests.support.api import respond, set_excluded
from tests.support.cases import account_window, announce, run_worker, stored_events
from tests.support.clock import ago, stamp
from tests.support.expected import expected_score
from tests.support.harness import MakeTenant, Tenant

MOVED = "stakeholder.moved"


async def _person(tenant: Tenant, stakeholder_id: str = "p-1", role: str = "influencer") -> None:
    if stakeholder_id == "p-1":
        await tenant.db.account("acme")
    await tenant.db.stakeholder(stakeholder_id, role=role, job_level="director", department="IT")


async def _answers(tenant: Tenant, *scored: tuple[int, datetime], who: str = "p-1") -> list[str]:
    """Stored answers, their response.created events, and the worker run; their ids."""
    ids = await tenant.db.respond(who, *scored)
    await announce(tenant, *ids)
    await run_worker(tenant)
    return ids


async def _moves(tenant: Tenant) -> list[Event]:
    return await stored_events(tenant, MOVED)


def _answer(response_id: str, score: int, category: str, when: datetime) -> dict[str, Any]:
    return {
        "response_id": response_id,
        "score": score,
        "category": category,
        "submitted_at": stamp(when),
    }


class TestMoved:
    async def test_a_fall_from_passive_to_detractor_carries_from_to_and_the_account_score(
        self, tenant: Tenant
    ) -> None:
        await _person(tenant)
        await tenant.db.stakeholder("p-2", role="user")
        then, now = ago(days=40), ago(minutes=5)
        await tenant.db.respond("p-2", (10, ago(days=3)))
        started = datetime.now(UTC)
        before, after = await _answers(tenant, (8, then), (3, now))

        [event] = await _moves(tenant)
        data = dict(event.data)
        account_window(data, started)
        assert data == {
            "stakeholder_id": "p-1",
            "account_id": "acme",
            "role": "influencer",
            "job_level": "director",
            "department": "IT",
            "survey": None,
            "direction": "down",
            "from": _answer(before, 8, "passive", then),
            "to": _answer(after, 3, "detractor", now),
            # p-1's latest (3) and p-2's 10, counted latest per stakeholder.
            "account_score": {
                "method": "latest_per_stakeholder",
                "score": expected_score(1, 0, 1),
            },
        }

    async def test_a_rise_is_a_move_up(self, tenant: Tenant) -> None:
        await _person(tenant)
        before, after = await _answers(tenant, (2, ago(days=9)), (9, ago(minutes=1)))

        [event] = await _moves(tenant)
        assert event.data["direction"] == "up"
        assert (event.data["from"]["response_id"], event.data["to"]["response_id"]) == (
            before,
            after,
        )
        assert (event.data["from"]["category"], event.data["to"]["category"]) == (
            "detractor",
            "promoter",
        )

    async def test_an_answer_in_the_same_category_moves_nobody(self, tenant: Tenant) -> None:
        await _person(tenant)
        await _answers(tenant, (8, ago(days=9)), (7, ago(minutes=1)))

        assert await _moves(tenant) == []

    async def test_a_first_answer_moves_nobody(self, tenant: Tenant) -> None:
        await _person(tenant)
        await _answers(tenant, (0, ago(minutes=1)))

        assert await _moves(tenant) == []

    async def test_the_previous_answer_is_the_one_right_before(self, tenant: Tenant) -> None:
        await _person(tenant)
        when = ago(days=10)
        # 9 -> 3 is a fall, but 3 is not p-1's latest; 3 -> 4 is no move.
        _, _, last = await _answers(tenant, (9, ago(days=30)), (3, ago(days=20)), (4, when))
        assert await _moves(tenant) == []

        await _answers(tenant, (10, ago(minutes=1)))

        [event] = await _moves(tenant)
        assert event.data["from"] == _answer(last, 4, "detractor", when)

    async def test_an_excluded_previous_answer_is_passed_over(self, tenant: Tenant) -> None:
        await _person(tenant)
        await tenant.db.respond("p-1", (9, ago(days=20)))
        await tenant.db.respond("p-1", (3, ago(days=10)), excluded=True)

        # Against the 9 (the 3 does not count), a 10 is no move.
        await _answers(tenant, (10, ago(minutes=1)))

        assert await _moves(tenant) == []


class TestWhichAnswersMove:
    async def test_through_ingest_and_the_worker(self, tenant: Tenant) -> None:
        await _person(tenant)
        first = await respond(tenant.client, "p-1", 10, ago(days=2))
        second = await respond(tenant.client, "p-1", 6, ago(minutes=1))

        await run_worker(tenant)

        [event] = await _moves(tenant)
        assert (event.data["from"]["response_id"], event.data["to"]["response_id"]) == (
            first,
            second,
        )

    async def test_an_answer_backdated_before_the_latest_moves_nobody(self, tenant: Tenant) -> None:
        await _person(tenant)
        await _answers(tenant, (9, ago(days=20)), (9, ago(minutes=1)))
        # Older than the latest 9: where p-1 stands now is unchanged.
        await _answers(tenant, (2, ago(days=10)))

        assert await _moves(tenant) == []

    async def test_of_a_batch_holding_two_answers_of_one_person_only_the_last_moves(
        self, tenant: Tenant
    ) -> None:
        await _person(tenant)
        await _answers(tenant, (9, ago(days=20)))
        middle, last = await _answers(tenant, (3, ago(days=2)), (8, ago(minutes=1)))

        [event] = await _moves(tenant)
        assert (event.data["from"]["response_id"], event.data["to"]["response_id"]) == (
            middle,
            last,
        )

    async def test_an_answer_excluded_before_the_worker_ran_moves_nobody(
        self, tenant: Tenant
    ) -> None:
        await _person(tenant)
        await _answers(tenant, (9, ago(days=20)))
        [latest] = await tenant.db.respond("p-1", (3, ago(minutes=1)))
        await announce(tenant, latest)
        await set_excluded(tenant.client, latest)

        await run_worker(tenant)

        assert await _moves(tenant) == []

    async def test_corrections_and_exclusions_move_nobody(self, tenant: Tenant) -> None:
        await _person(tenant)
        _, latest = await _answers(tenant, (9, ago(days=20)), (10, ago(minutes=1)))

        r = await tenant.client.patch(f"/v1/responses/{latest}", json={"score": 2})
        assert r.status_code == 200, r.text
        await set_excluded(tenant.client, latest)
        await set_excluded(tenant.client, latest, excluded=False)
        await run_worker(tenant)

        assert await _moves(tenant) == []
        assert [e.type for e in await stored_events(tenant, "response.")] == [
            "response.created",
            "response.created",
            "response.corrected",
            "response.excluded",
            "response.included",
        ]


class TestOnce:
    async def test_an_event_dispatched_twice_announces_the_move_once(self, tenant: Tenant) -> None:
        await _person(tenant)
        _, latest = await _answers(tenant, (9, ago(days=20)), (3, ago(minutes=1)))

        await announce(tenant, latest)  # the same answer's event again: a job run twice
        await run_worker(tenant)

        [event] = await _moves(tenant)
        assert event.data["to"]["response_id"] == latest


class TestTenancy:
    async def test_another_workspaces_answers_are_no_previous_answer(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")
        await _person(other)
        await _answers(other, (10, ago(days=20)))
        await _person(tenant)

        await _answers(tenant, (2, ago(minutes=1)))

        assert await _moves(tenant) == []
        await _answers(other, (1, ago(minutes=1)))
        assert await _moves(tenant) == []
        [event] = await _moves(other)
        assert event.data["account_score"]["score"] == expected_score(0, 0, 1)
