"""Cases opened by the worker from `response.created` events under the case rules: one open case
per stakeholder and kind, a new trigger joins it, and a job that runs twice changes nothing."""

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from app.db import session_scope
from app.models import Case, Event, Job
from app.services import events
from tests.support.api import put_settings
from tests.support.cases import (
    announce,
    case_changes,
    case_events,
    case_responses,
    run_worker,
    stored_cases,
)
from tests.support.clock import ago, stamp
from tests.support.harness import MakeTenant, Tenant


async def _person(tenant: Tenant, stakeholder_id: str = "p-1", role: str = "other") -> None:
    if stakeholder_id == "p-1":
        await tenant.db.account("acme")
    await tenant.db.stakeholder(stakeholder_id, role=role, job_level="director", department="IT")


async def _answer(
    tenant: Tenant, score: int, *, who: str = "p-1", minutes_ago: float = 5, **kw: Any
) -> str:
    [response_id] = await tenant.db.respond(who, (score, ago(minutes=minutes_ago)), **kw)
    await announce(tenant, response_id)
    await run_worker(tenant)
    return response_id


async def _recorded_at(tenant: Tenant, response_id: str) -> datetime:
    """When the answer's response.created event was written: the instant its SLA counts from."""
    async with tenant.db.sessionmaker() as session:
        occurred_at = await session.scalar(
            select(Event.occurred_at).where(
                Event.workspace_id == tenant.id,
                Event.type == "response.created",
                Event.data["response_id"].astext == response_id,
            )
        )
    assert occurred_at is not None
    return occurred_at


class TestOpening:
    async def test_a_detractor_opens_a_recovery_case_due_48_hours_after_it_was_recorded(
        self, tenant: Tenant
    ) -> None:
        await _person(tenant)
        response_id = await _answer(tenant, 3)

        [case] = await stored_cases(tenant)
        recorded_at = await _recorded_at(tenant, response_id)
        assert (case.kind, case.rule, case.sla_hours, case.status) == (
            "recovery",
            "detractor",
            48,
            "open",
        )
        assert (case.stakeholder_id, case.account_id) == ("p-1", "acme")
        assert (case.role, case.job_level, case.department) == ("other", "director", "IT")
        assert (case.opened_at, case.due_at) == (recorded_at, recorded_at + timedelta(hours=48))
        assert (case.owner, case.outcome, case.first_action_at, case.closed_at) == (
            None,
            None,
            None,
            None,
        )
        assert await case_responses(tenant, case.id) == [(response_id, "detractor")]
        assert await case_changes(tenant, case.id) == [
            ("opened", "rule:detractor", {"status": {"from": None, "to": "open"}})
        ]

    async def test_opening_emits_case_opened_with_the_case_and_its_trigger(
        self, tenant: Tenant
    ) -> None:
        await _person(tenant)
        response_id = await _answer(tenant, 3)

        [case] = await stored_cases(tenant)
        [event] = await case_events(tenant)
        assert event.type == "case.opened"
        assert event.data == {
            "case_id": str(case.id),
            "kind": "recovery",
            "rule": "detractor",
            "sla_hours": 48,
            "status": "open",
            "stakeholder_id": "p-1",
            "account_id": "acme",
            "role": "other",
            "job_level": "director",
            "department": "IT",
            "owner": None,
            "due_at": stamp(case.due_at),
            "outcome": None,
            "root_cause": None,
            "opened_at": stamp(case.opened_at),
            "first_action_at": None,
            "closed_at": None,
            "action": "opened",
            "changed_by": "rule:detractor",
            "changes": {"status": {"from": None, "to": "open"}},
            "trigger": {"response_id": response_id, "score": 3, "rule": "detractor"},
        }

    async def test_a_passive_decision_maker_opens_a_case_and_a_passive_user_none(
        self, tenant: Tenant
    ) -> None:
        await _person(tenant, role="decision_maker")
        await _person(tenant, "p-2", role="user")
        await _answer(tenant, 8)
        await _answer(tenant, 8, who="p-2")

        [case] = await stored_cases(tenant)
        assert (case.stakeholder_id, case.kind, case.rule) == (
            "p-1",
            "recovery",
            "decision_maker_passive",
        )

    async def test_a_key_promoter_opens_an_advocacy_case_due_in_a_week(
        self, tenant: Tenant
    ) -> None:
        await _person(tenant, role="influencer")
        await _person(tenant, "p-2", role="user")
        response_id = await _answer(tenant, 9)
        await _answer(tenant, 10, who="p-2")

        [case] = await stored_cases(tenant)
        assert (case.stakeholder_id, case.kind, case.rule) == ("p-1", "advocacy", "advocacy")
        assert case.due_at - case.opened_at == timedelta(hours=168)
        assert await case_responses(tenant, case.id) == [(response_id, "advocacy")]

    async def test_a_second_trigger_joins_the_open_case(self, tenant: Tenant) -> None:
        await _person(tenant)
        first = await _answer(tenant, 3, minutes_ago=10)
        second = await _answer(tenant, 5)

        [case] = await stored_cases(tenant)
        assert {r for r, _ in await case_responses(tenant, case.id)} == {first, second}
        assert [a for a, _, _ in await case_changes(tenant, case.id)] == [
            "opened",
            "response_added",
        ]
        assert [(e.type, e.data["action"]) for e in await case_events(tenant)] == [
            ("case.opened", "opened"),
            ("case.updated", "response_added"),
        ]

    async def test_after_the_case_closed_a_new_trigger_opens_another(self, tenant: Tenant) -> None:
        await _person(tenant)
        await _answer(tenant, 3, minutes_ago=10)
        [closed] = await stored_cases(tenant)
        async with session_scope(tenant.db.sessionmaker) as session:
            await session.execute(
                update(Case)
                .where(Case.id == closed.id)
                .values(status="closed", outcome="resolved", closed_at=ago(minutes=1))
            )
        second = await _answer(tenant, 4)

        cases = {c.status: c for c in await stored_cases(tenant)}
        assert sorted(cases) == ["closed", "open"]
        assert await case_responses(tenant, cases["open"].id) == [(second, "detractor")]

    async def test_one_answer_can_open_a_recovery_and_an_advocacy_case(
        self, tenant: Tenant
    ) -> None:
        await put_settings(
            tenant.client,
            {
                "case_rules": [
                    {"id": "churn", "kind": "keyword", "sla_hours": 4, "keywords": ["cancel"]},
                    {"id": "champions", "kind": "advocacy", "sla_hours": 24},
                ]
            },
        )
        await _person(tenant, role="decision_maker")
        await _answer(tenant, 9, comment="Great, but we may Cancel the add-on.")

        assert sorted((c.kind, c.rule) for c in await stored_cases(tenant)) == [
            ("advocacy", "champions"),
            ("recovery", "churn"),
        ]

    async def test_the_first_matching_rule_of_a_kind_opens_the_case(self, tenant: Tenant) -> None:
        await put_settings(
            tenant.client,
            {
                "case_rules": [
                    {"id": "key-people", "kind": "passive_or_lower", "sla_hours": 4},
                    {"id": "detractor", "kind": "detractor", "sla_hours": 48},
                ]
            },
        )
        await _person(tenant, role="decision_maker")
        await _answer(tenant, 2)

        [case] = await stored_cases(tenant)
        assert (case.rule, case.due_at - case.opened_at) == ("key-people", timedelta(hours=4))


class TestRulesThatLookFurther:
    async def test_falling_a_category_opens_a_case_and_staying_does_not(
        self, tenant: Tenant
    ) -> None:
        await put_settings(
            tenant.client, {"case_rules": [{"id": "fell", "kind": "fell_category", "sla_hours": 1}]}
        )
        await _person(tenant)
        await _person(tenant, "p-2")
        await tenant.db.respond("p-1", (10, ago(days=20)))
        await tenant.db.respond("p-2", (8, ago(days=20)))
        fell = await _answer(tenant, 8)
        await _answer(tenant, 7, who="p-2")

        [case] = await stored_cases(tenant)
        assert await case_responses(tenant, case.id) == [(fell, "fell")]

    async def test_an_excluded_earlier_answer_is_not_the_previous_one(self, tenant: Tenant) -> None:
        await put_settings(
            tenant.client, {"case_rules": [{"id": "fell", "kind": "fell_category", "sla_hours": 1}]}
        )
        await _person(tenant)
        await tenant.db.respond("p-1", (7, ago(days=30)))
        await tenant.db.respond("p-1", (10, ago(days=20)), excluded=True)
        await _answer(tenant, 8)

        assert await stored_cases(tenant) == []

    async def test_keywords_match_whole_words_in_any_case(self, tenant: Tenant) -> None:
        await put_settings(
            tenant.client,
            {
                "case_rules": [
                    {"id": "k", "kind": "keyword", "sla_hours": 1, "keywords": ["too slow"]}
                ]
            },
        )
        for who in ("p-1", "p-2", "p-3"):
            await _person(tenant, who)
        await _answer(tenant, 10, who="p-1", comment="Support is TOO\n slow.")
        await _answer(tenant, 10, who="p-2", comment="not too slowly")
        await _answer(tenant, 10, who="p-3")

        assert [c.stakeholder_id for c in await stored_cases(tenant)] == ["p-1"]


class TestNothingToOpen:
    async def test_an_answer_excluded_before_the_worker_ran_opens_nothing(
        self, tenant: Tenant
    ) -> None:
        await _person(tenant)
        await _answer(tenant, 2, excluded=True)

        assert await stored_cases(tenant) == []

    async def test_an_answer_given_over_30_days_before_it_was_recorded_opens_nothing(
        self, tenant: Tenant
    ) -> None:
        await _person(tenant)
        await _answer(tenant, 2, minutes_ago=31 * 24 * 60)

        assert await stored_cases(tenant) == []

    async def test_no_rules_no_cases(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, {"case_rules": []})
        await _person(tenant)
        await _answer(tenant, 0)

        assert await stored_cases(tenant) == []

    async def test_an_erased_answer_opens_nothing(self, tenant: Tenant) -> None:
        await _person(tenant)
        [response_id] = await tenant.db.respond("p-1", (2, ago(minutes=5)))
        await announce(tenant, response_id)
        r = await tenant.client.delete("/v1/stakeholders/p-1")
        assert r.status_code == 204, r.text
        await run_worker(tenant)

        assert await stored_cases(tenant) == []


class TestRepeats:
    async def test_an_event_dispatched_twice_changes_nothing(self, tenant: Tenant) -> None:
        await _person(tenant)
        response_id = await _answer(tenant, 3)
        await announce(tenant, response_id)  # the same answer's event again: a job run twice
        await run_worker(tenant)

        [case] = await stored_cases(tenant)
        assert await case_responses(tenant, case.id) == [(response_id, "detractor")]
        assert [e.type for e in await case_events(tenant)] == ["case.opened"]

    async def test_a_repeat_after_the_case_closed_opens_nothing(self, tenant: Tenant) -> None:
        await _person(tenant)
        response_id = await _answer(tenant, 3)
        async with session_scope(tenant.db.sessionmaker) as session:
            await session.execute(
                update(Case)
                .where(Case.workspace_id == tenant.id)
                .values(status="closed", outcome="resolved", closed_at=ago(minutes=1))
            )
        await announce(tenant, response_id)
        await run_worker(tenant)

        assert [c.status for c in await stored_cases(tenant)] == ["closed"]


class TestTenancy:
    async def test_each_workspace_opens_cases_under_its_own_rules(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("tenant-b")
        await put_settings(other.client, {"case_rules": []})
        for t in (tenant, other):
            await _person(t)
            await _answer(t, 1)

        assert [c.workspace_id for c in await stored_cases(tenant)] == [tenant.id]
        assert await stored_cases(other) == []


class TestConcurrentWorkers:
    async def test_two_workers_on_one_stakeholders_answers_open_one_case(
        self, committed: Tenant
    ) -> None:
        await _person(committed)
        ids = await committed.db.respond(
            "p-1", (2, ago(minutes=3)), (3, ago(minutes=2)), (1, ago(minutes=1))
        )
        await announce(committed, *ids)

        await asyncio.gather(run_worker(committed), run_worker(committed))

        [case] = await stored_cases(committed)
        assert {r for r, _ in await case_responses(committed, case.id)} == set(ids)
        assert sorted(e.type for e in await case_events(committed)) == [
            "case.opened",
            "case.updated",
            "case.updated",
        ]


class TestForeignEvents:
    async def test_an_event_naming_no_response_is_left_to_the_other_subscribers(
        self, tenant: Tenant
    ) -> None:
        async with session_scope(tenant.db.sessionmaker) as session:
            await events.emit_many(
                session,
                tenant.id,
                [("response.created", {"response_id": "r1"}), ("response.created", {})],
            )

        await run_worker(tenant)

        async with tenant.db.sessionmaker() as session:
            statuses = await session.scalars(
                select(Job.status).where(
                    Job.workspace_id == tenant.id, Job.task == events.DISPATCH_TASK
                )
            )
            assert set(statuses) == {"done"}
        assert await stored_cases(tenant) == []
