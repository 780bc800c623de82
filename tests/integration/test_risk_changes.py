"""`account.risk_changed`: after each response event the worker reassesses the account under the
workspace's default at-risk parameters and announces it when the account entered or left the
list, with the reasons and their evidence; once per change, whatever the job's repeats."""

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AccountRisk, Event
from tests.support.api import put_settings, set_excluded
from tests.support.cases import account_window, announce, run_worker, stored_events
from tests.support.clock import ago, stamp
from tests.support.expected import expected_score
from tests.support.harness import MakeTenant, Tenant

CHANGED = "account.risk_changed"
DM_DETRACTOR = "decision_maker_detractor"


async def _people(tenant: Tenant, account_id: str = "acme") -> None:
    """An account with a decision maker (dm) and a user (u)."""
    await tenant.db.account(account_id)
    await tenant.db.stakeholder(f"{account_id}-dm", account_id, role="decision_maker")
    await tenant.db.stakeholder(f"{account_id}-u", account_id, role="user")


async def _answer(tenant: Tenant, who: str, score: int, *, minutes_ago: float = 5) -> str:
    """A stored answer, its response.created event, and the worker run; its id."""
    [response_id] = await tenant.db.respond(who, (score, ago(minutes=minutes_ago)))
    await announce(tenant, response_id)
    await run_worker(tenant)
    return response_id


async def _changes(tenant: Tenant) -> list[Event]:
    return await stored_events(tenant, CHANGED)


async def _state(tenant: Tenant, account_id: str = "acme") -> tuple[bool, list[str]] | None:
    async with tenant.db.sessionmaker() as session:
        row = await session.scalar(
            select(AccountRisk).where(
                AccountRisk.workspace_id == tenant.id, AccountRisk.account_id == account_id
            )
        )
    return None if row is None else (row.at_risk, list(row.reasons))


async def _until_waiting(session: AsyncSession, sessions: int) -> None:
    """Until `sessions` others wait for a lock on account_risk (10 s at most)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND query ILIKE '%account_risk%'"
    )
    for _ in range(200):
        # A transaction reads one snapshot of pg_stat_activity unless told to drop it.
        await session.execute(text("SELECT pg_stat_clear_snapshot()"))
        if (await session.execute(waiting)).scalar_one() >= sessions:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{sessions} workers never waited on the state row")


def _dm_detractor(response_id: str, score: int, when: datetime) -> dict[str, Any]:
    return {
        "code": DM_DETRACTOR,
        "detail": "1 decision maker(s) gave a detractor score",
        "answers": [
            {
                "stakeholder_id": "acme-dm",
                "response_id": response_id,
                "score": score,
                "submitted_at": stamp(when),
            }
        ],
    }


class TestEnteredAndLeft:
    async def test_a_decision_maker_detractor_enters_the_list_and_a_rise_leaves_it(
        self, tenant: Tenant
    ) -> None:
        await _people(tenant)
        when = ago(minutes=20)
        [low] = await tenant.db.respond("acme-dm", (2, when))
        await announce(tenant, low)
        await run_worker(tenant)
        assert await _state(tenant) == (True, [DM_DETRACTOR])

        await _answer(tenant, "acme-dm", 9, minutes_ago=10)

        entered, left = await _changes(tenant)
        assert entered.data["change"] == "entered"
        assert (entered.data["reasons"], entered.data["evidence"]) == (
            [DM_DETRACTOR],
            [_dm_detractor(low, 2, when)],
        )
        assert (entered.data["previous_reasons"], entered.data["previous_changed_at"]) == (
            [],
            None,
        )
        # The detractor opened a recovery case first, in the same dispatch.
        assert entered.data["open_case"]["count"] == 1
        assert left.data["change"] == "left"
        assert (left.data["reasons"], left.data["evidence"]) == ([], [])
        assert left.data["previous_reasons"] == [DM_DETRACTOR]
        assert left.data["previous_changed_at"] == stamp(entered.occurred_at)
        assert await _state(tenant) == (False, [])

    async def test_the_event_carries_the_account_the_score_and_the_rules(
        self, tenant: Tenant
    ) -> None:
        await _people(tenant)
        await put_settings(tenant.client, {"at_risk": {"nps_below": 10, "silent_days": 30}})
        when = ago(minutes=5)
        [low] = await tenant.db.respond("acme-dm", (4, when))
        await announce(tenant, low)
        started = datetime.now(UTC)
        await run_worker(tenant)

        [event] = await _changes(tenant)
        data = dict(event.data)
        account_window(data, started)
        case_ids = data["open_case"]["case_ids"]
        assert data == {
            "account_id": "acme",
            "change": "entered",
            "reasons": [DM_DETRACTOR],
            "evidence": [_dm_detractor(low, 4, when)],
            "previous_reasons": [],
            "previous_changed_at": None,
            "open_case": {"count": 1, "case_ids": case_ids},
            "account_score": {
                "method": "latest_per_stakeholder",
                "score": expected_score(0, 0, 1),
            },
            "rules": {"nps_below": 10.0, "silent_days": 30},
        }
        assert uuid.UUID(case_ids[0])

    async def test_an_account_first_assessed_on_the_list_enters_it(self, tenant: Tenant) -> None:
        await _people(tenant)

        await _answer(tenant, "acme-u", 9)

        [event] = await _changes(tenant)
        assert event.data["change"] == "entered"
        assert event.data["evidence"] == [
            {
                "code": "no_decision_maker_answer",
                "detail": "no decision-maker answer in the window (1 registered)",
                "registered_decision_makers": 1,
            }
        ]
        assert await _state(tenant) == (True, ["no_decision_maker_answer"])

    async def test_an_account_first_assessed_off_the_list_announces_nothing(
        self, tenant: Tenant
    ) -> None:
        await _people(tenant)

        await _answer(tenant, "acme-dm", 10)

        assert await _changes(tenant) == []
        assert await _state(tenant) == (False, [])

    async def test_new_reasons_while_on_the_list_are_stored_not_announced(
        self, tenant: Tenant
    ) -> None:
        await _people(tenant)
        await _answer(tenant, "acme-u", 9, minutes_ago=30)  # no decision-maker answer
        await _answer(tenant, "acme-dm", 3, minutes_ago=20)  # a decision-maker detractor

        [event] = await _changes(tenant)
        assert event.data["reasons"] == ["no_decision_maker_answer"]
        assert await _state(tenant) == (True, [DM_DETRACTOR])


class TestCorrections:
    async def test_correcting_excluding_and_including_the_answer_that_flags_it(
        self, tenant: Tenant
    ) -> None:
        await _people(tenant)
        await tenant.db.stakeholder("acme-dm2", role="decision_maker")
        low = await _answer(tenant, "acme-dm", 8, minutes_ago=30)
        await _answer(tenant, "acme-dm2", 10, minutes_ago=20)
        assert await _changes(tenant) == []

        r = await tenant.client.patch(f"/v1/responses/{low}", json={"score": 1})
        assert r.status_code == 200, r.text
        await run_worker(tenant)
        await set_excluded(tenant.client, low)
        await run_worker(tenant)
        await set_excluded(tenant.client, low, excluded=False)
        await run_worker(tenant)

        assert [e.data["change"] for e in await _changes(tenant)] == [
            "entered",  # corrected to 1: a decision-maker detractor
            "left",  # excluded: the other decision maker's 10 is all there is
            "entered",  # included again
        ]
        assert await _state(tenant) == (True, [DM_DETRACTOR])


class TestOnce:
    async def test_an_event_dispatched_twice_announces_the_change_once(
        self, tenant: Tenant
    ) -> None:
        await _people(tenant)
        low = await _answer(tenant, "acme-dm", 2)

        await announce(tenant, low)  # the same answer's event again: a job run twice
        await run_worker(tenant)

        [event] = await _changes(tenant)
        assert event.data["change"] == "entered"
        async with tenant.db.sessionmaker() as session:
            row = await session.get_one(AccountRisk, (tenant.id, "acme"))
        assert row.change_event_id == event.id

    async def test_concurrent_reassessments_announce_one_change(self, committed: Tenant) -> None:
        await _people(committed)
        await _answer(committed, "acme-dm", 10, minutes_ago=30)  # assessed: off the list
        await committed.db.stakeholder("acme-dm2", role="decision_maker")
        first = await committed.db.respond("acme-dm", (3, ago(minutes=2)))
        second = await committed.db.respond("acme-dm2", (2, ago(minutes=1)))
        await announce(committed, *first, *second)

        # Hold the account's state row while two workers take one event each, until both
        # wait on it: they then run side by side, as far as the row lets them.
        async with committed.db.sessionmaker() as holder, holder.begin():
            await holder.execute(
                select(AccountRisk)
                .where(AccountRisk.workspace_id == committed.id)
                .with_for_update()
            )
            workers = asyncio.gather(run_worker(committed), run_worker(committed))
            await _until_waiting(holder, 2)
        await workers

        assert [e.data["change"] for e in await _changes(committed)] == ["entered"]


class TestTenancy:
    async def test_each_workspace_keeps_its_own_state(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")
        await _people(other)
        await _answer(other, "acme-dm", 1)
        await _people(tenant)

        await _answer(tenant, "acme-dm", 10)

        assert await _changes(tenant) == []
        assert await _state(tenant) == (False, [])
        [event] = await _changes(other)
        assert event.data["change"] == "entered"
        assert await _state(other) == (True, [DM_DETRACTOR])

    async def test_an_account_deleted_before_the_worker_ran_is_left_alone(
        self, tenant: Tenant
    ) -> None:
        await _people(tenant)
        [low] = await tenant.db.respond("acme-dm", (2, ago(minutes=1)))
        await announce(tenant, low)
        r = await tenant.client.delete("/v1/accounts/acme")
        assert r.status_code == 204, r.text

        await run_worker(tenant)

        assert await _changes(tenant) == []
        assert await _state(tenant) is None
