"""Erasure reaches every copy: DELETE /v1/stakeholders/{id} (and DELETE /v1/accounts/{id}) leave
no comment, note or event of the person behind, not in an Idempotency-Key's stored answer, not
in the events, not in the webhook delivery log."""

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.models import Event, IdempotencyRecord, WebhookAttempt, WebhookDelivery
from tests.support.api import put_account, put_stakeholder
from tests.support.cases import open_case, run_worker
from tests.support.harness import MakeTenant, Tenant
from tests.support.invitations import invite, public_call
from tests.support.problems import PROBLEM_JSON, REPLAYED
from tests.support.processes import free_port
from tests.support.webhooks import Receiver, drain, hooks_tenant, receiving

ONE = "/v1/responses"
SECRET = "my manager ignores me"


def _key(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def _people(client: httpx.AsyncClient) -> None:
    await put_account(client, "acme", name="Acme")
    await put_stakeholder(client, "dana", role="user")
    await put_stakeholder(client, "eve", role="user")


async def _stored_bodies(
    sessionmaker: async_sessionmaker[AsyncSession], tenant: Tenant
) -> list[bytes | None]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(IdempotencyRecord.body).where(IdempotencyRecord.workspace_id == tenant.id)
        )
        return list(rows)


async def _named(sessionmaker: async_sessionmaker[AsyncSession], tenant: Tenant) -> list[str]:
    """The stakeholder each of the workspace's events that names one at its top level names."""
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Event.data["stakeholder_id"].astext)
            .where(Event.workspace_id == tenant.id, Event.data.has_key("stakeholder_id"))
            .order_by(Event.seq)
        )
        return [str(r) for r in rows]


def _assert_gone(r: httpx.Response) -> None:
    assert r.status_code == 410, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.headers[REPLAYED] == "true"
    assert (r.json()["type"], r.json()["status"]) == ("/problems/gone", 410)
    assert SECRET not in r.text


class TestReplayAfterErasure:
    async def test_an_erased_response_replays_as_410(self, tenant: Tenant) -> None:
        await _people(tenant.client)
        body = {"stakeholder_id": "dana", "score": 3, "comment": SECRET}
        first = await tenant.client.post(ONE, json=body, headers=_key("k-1"))
        assert first.status_code == 201, first.text
        erased = await tenant.client.delete("/v1/stakeholders/dana")
        assert erased.status_code == 204, erased.text
        _assert_gone(await tenant.client.post(ONE, json=body, headers=_key("k-1")))
        # Still refused, never done anew: the key stays used for its 48 hours.
        _assert_gone(await tenant.client.post(ONE, json=body, headers=_key("k-1")))

    async def test_a_kept_response_replays_as_it_is_now(self, tenant: Tenant) -> None:
        await _people(tenant.client)
        body = {"stakeholder_id": "dana", "score": 3, "comment": SECRET}
        first = await tenant.client.post(ONE, json=body, headers=_key("k-1"))
        excluded = await tenant.client.patch(
            f"{ONE}/{first.json()['id']}", json={"excluded": True, "reason": "test"}
        )
        assert excluded.status_code == 200, excluded.text
        again = await tenant.client.post(ONE, json=body, headers=_key("k-1"))
        assert (again.status_code, again.headers[REPLAYED]) == (201, "true")
        assert again.json() == excluded.json()

    async def test_the_stored_answer_holds_no_comment(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await _people(tenant.client)
        body = {"stakeholder_id": "dana", "score": 3, "comment": SECRET}
        assert (await tenant.client.post(ONE, json=body, headers=_key("k-1"))).status_code == 201
        batch = {"responses": [{"stakeholder_id": "eve", "score": 4, "comment": SECRET}]}
        r = await tenant.client.post(f"{ONE}/batch", json=batch, headers=_key("k-2"))
        assert r.status_code == 200, r.text
        bodies = await _stored_bodies(sessionmaker, tenant)
        assert len(bodies) == 2
        assert all(b is None or SECRET.encode() not in b for b in bodies)

    async def test_a_public_answer_keeps_no_comment_and_replays_as_it_is(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await _people(tenant.client)
        token = (await invite(tenant.client, "dana"))["token"]
        body = {"score": 2, "comment": SECRET}
        first = await public_call(
            tenant.client, "POST", "answers", token, json=body, headers=_key("p")
        )
        again = await public_call(
            tenant.client, "POST", "answers", token, json=body, headers=_key("p")
        )
        assert (first.status_code, again.status_code, again.headers[REPLAYED]) == (201, 201, "true")
        assert again.json() == first.json()
        assert first.json()["comment"] == SECRET
        bodies = await _stored_bodies(sessionmaker, tenant)
        assert all(b is None or SECRET.encode() not in b for b in bodies)

    async def test_an_erased_persons_case_note_replays_as_410(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        case_id = await open_case(tenant, "dana", 2)
        note = {"body": f"called dana: {SECRET}"}
        path = f"/v1/cases/{case_id}/notes"
        first = await tenant.client.post(path, json=note, headers=_key("n-1"))
        assert first.status_code == 201, first.text
        again = await tenant.client.post(path, json=note, headers=_key("n-1"))
        assert (again.status_code, again.headers[REPLAYED]) == (201, "true")
        assert again.json() == first.json()
        assert all(
            b is None or SECRET.encode() not in b
            for b in await _stored_bodies(sessionmaker, tenant)
        )
        assert (await tenant.client.delete("/v1/stakeholders/dana")).status_code == 204
        _assert_gone(await tenant.client.post(path, json=note, headers=_key("n-1")))


class TestEventsAfterErasure:
    async def test_the_persons_events_go_and_no_one_elses(
        self,
        tenant: Tenant,
        make_tenant: MakeTenant,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        other = await make_tenant("tenant-b")
        for t in (tenant, other):
            await _people(t.client)
            for person in ("dana", "eve"):
                r = await t.client.post(ONE, json={"stakeholder_id": person, "score": 3})
                assert r.status_code == 201, r.text
        await open_case(tenant, "dana", 1)
        assert set(await _named(sessionmaker, tenant)) == {"dana", "eve"}
        kept = [name for name in await _named(sessionmaker, tenant) if name == "eve"]
        theirs = await _named(sessionmaker, other)
        assert (await tenant.client.delete("/v1/stakeholders/dana")).status_code == 204
        assert await _named(sessionmaker, tenant) == kept
        # Another workspace's "dana" is another person.
        assert "dana" in theirs
        assert await _named(sessionmaker, other) == theirs

    async def test_an_at_risk_change_that_names_the_person_goes_too(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await put_account(tenant.client, "acme", name="Acme")
        await put_stakeholder(tenant.client, "dana", role="decision_maker")
        await put_stakeholder(tenant.client, "eve", role="user")
        for person in ("dana", "eve"):
            r = await tenant.client.post(ONE, json={"stakeholder_id": person, "score": 1})
            assert r.status_code == 201, r.text
        await run_worker(tenant)
        async with sessionmaker() as session:
            types = set(
                await session.scalars(select(Event.type).where(Event.workspace_id == tenant.id))
            )
        assert "account.risk_changed" in types
        assert (await tenant.client.delete("/v1/stakeholders/dana")).status_code == 204
        async with sessionmaker() as session:
            left = await session.scalars(select(Event.data).where(Event.workspace_id == tenant.id))
            assert all('"dana"' not in str(d).replace("'", '"') for d in left)

    async def test_deleting_an_account_removes_the_events_that_name_it(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await _people(tenant.client)
        await put_account(tenant.client, "globex", name="Globex")
        await put_stakeholder(tenant.client, "finn", account_id="globex", role="user")
        for person in ("dana", "finn"):
            r = await tenant.client.post(ONE, json={"stakeholder_id": person, "score": 3})
            assert r.status_code == 201, r.text
        assert (await tenant.client.delete("/v1/accounts/acme")).status_code == 204
        assert await _named(sessionmaker, tenant) == ["finn"]


@pytest_asyncio.fixture(loop_scope="session")
async def hooks(engine: AsyncEngine) -> AsyncIterator[Tenant]:
    async with hooks_tenant(engine, "erasure-hooks") as tenant:
        yield tenant


@pytest.fixture
def receiver() -> Receiver:
    return Receiver(free_port(), status=500, body=SECRET.encode())


class TestDeliveryLogAfterErasure:
    async def test_the_persons_deliveries_and_attempts_go(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        made = await hooks.client.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["response.created"]}
        )
        assert made.status_code == 201, made.text
        await _people(hooks.client)
        with receiving(receiver):
            for person in ("dana", "eve"):
                r = await hooks.client.post(ONE, json={"stakeholder_id": person, "score": 3})
                assert r.status_code == 201, r.text
            await drain(hooks)
        sessionmaker = hooks.db.sessionmaker
        async with sessionmaker() as session:
            before = len(
                (
                    await session.scalars(
                        select(WebhookDelivery).where(WebhookDelivery.workspace_id == hooks.id)
                    )
                ).all()
            )
            tried = len(
                (
                    await session.scalars(
                        select(WebhookAttempt).where(WebhookAttempt.workspace_id == hooks.id)
                    )
                ).all()
            )
        assert (before, tried) == (2, 2)
        assert (await hooks.client.delete("/v1/stakeholders/dana")).status_code == 204
        async with sessionmaker() as session:
            kept = (
                (
                    await session.execute(
                        select(Event.data["stakeholder_id"].astext)
                        .join(WebhookDelivery, WebhookDelivery.event_id == Event.id)
                        .where(WebhookDelivery.workspace_id == hooks.id)
                    )
                )
                .scalars()
                .all()
            )
            tried = len(
                (
                    await session.scalars(
                        select(WebhookAttempt).where(WebhookAttempt.workspace_id == hooks.id)
                    )
                ).all()
            )
        assert (list(kept), tried) == (["eve"], 1)
