"""Every event about one answer carries its account's current score, added by the worker when
it dispatches the event (never counted in the request that records the answer)."""

from datetime import UTC, datetime

from sqlalchemy import select

from app.db import in_workspace, session_scope
from app.jobs import enqueue
from app.models import Event
from app.services.events import DISPATCH_TASK
from tests.support.api import respond, set_excluded
from tests.support.cases import account_window, run_worker, stored_events
from tests.support.clock import ago
from tests.support.expected import expected_score
from tests.support.harness import MakeTenant, Tenant
from tests.support.invitations import answer, invite_decision_maker


async def _by_type(tenant: Tenant, kind: str) -> list[Event]:
    return [e for e in await stored_events(tenant, kind) if e.type == kind]


class TestAccountScoreOnAnswerEvents:
    async def test_response_created_gains_the_accounts_score_when_dispatched(
        self, tenant: Tenant
    ) -> None:
        await tenant.db.account("acme")
        await tenant.db.stakeholder("p-1", role="influencer")
        await tenant.db.stakeholder("p-2", role="user")
        await respond(tenant.client, "p-2", 10, ago(days=3))
        await respond(tenant.client, "p-1", 3, ago(minutes=1))
        [first, second] = await _by_type(tenant, "response.created")
        assert "account_score" not in second.data  # nothing counted in the request

        started = datetime.now(UTC)
        await run_worker(tenant)

        [first, second] = await _by_type(tenant, "response.created")
        latest = dict(second.data)
        account_window(latest, started)
        assert latest["account_score"] == {
            "method": "latest_per_stakeholder",
            "score": expected_score(1, 0, 1),  # as it stands at dispatch: both answers in
        }
        assert first.data["account_score"]["score"]["n"] == 2

    async def test_an_exclusion_and_a_public_answer_carry_it_too(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        given = await answer(tenant.client, made["token"], {"score": 9})
        await set_excluded(tenant.client, given["id"])
        await run_worker(tenant)

        for kind, n in (("invitation.answered", 0), ("response.excluded", 0)):
            [event] = await _by_type(tenant, kind)
            assert event.data["account_score"]["score"]["n"] == n, kind

    async def test_a_repeated_dispatch_keeps_the_first_score(self, tenant: Tenant) -> None:
        await tenant.db.account("acme")
        await tenant.db.stakeholder("p-1")
        await respond(tenant.client, "p-1", 8, ago(minutes=1))
        await run_worker(tenant)
        [event] = await _by_type(tenant, "response.created")
        kept = event.data["account_score"]

        # The account changes, then the same event is dispatched again (at least once).
        await tenant.db.stakeholder("p-2")
        await tenant.db.respond("p-2", (0, ago(seconds=30)))
        async with session_scope(tenant.db.sessionmaker) as session:
            await in_workspace(session, tenant.id)
            payload = {"event_id": str(event.id)}
            await enqueue(session, DISPATCH_TASK, payload, workspace_id=tenant.id)
        assert await run_worker(tenant) >= 1

        async with tenant.db.sessionmaker() as session:
            again = await session.scalar(select(Event).where(Event.id == event.id))
        assert again is not None
        assert again.data["account_score"] == kept

    async def test_another_workspaces_answers_are_not_counted(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("other")
        for who in (tenant, other):
            await who.db.account("acme")
            await who.db.stakeholder("p-1")
        await respond(other.client, "p-1", 0, ago(minutes=2))
        await respond(tenant.client, "p-1", 10, ago(minutes=1))
        await run_worker(tenant)

        [event] = await _by_type(tenant, "response.created")
        assert event.data["account_score"]["score"] == expected_score(1, 0, 0)
