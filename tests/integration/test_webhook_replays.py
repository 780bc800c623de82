"""The delivery log and the replays, on real commits to a local receiver: list deliveries with
their attempts, retry one, recover since an instant, send webhook.test; a request that fails
after emitting sends nothing; tenancy."""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.auth import AnySubject
from app.db import SessionDep, session_scope
from app.errors import Conflict
from app.models import Event, Job
from app.services import events
from tests.support.clock import stamp
from tests.support.harness import Tenant, build_app, client_for
from tests.support.problems import assert_invalid, assert_not_found, problem
from tests.support.processes import free_port
from tests.support.webhooks import (
    WORKER,
    Receiver,
    attempts,
    drain,
    emit,
    hooks_tenant,
    receiving,
    register,
    verified,
)


@pytest_asyncio.fixture(loop_scope="session")
async def hooks(engine: AsyncEngine) -> AsyncIterator[Tenant]:
    async with hooks_tenant(engine) as tenant:
        yield tenant


@pytest.fixture
def receiver() -> Receiver:
    return Receiver(free_port())


async def log(tenant: Tenant, endpoint: dict[str, Any], **params: Any) -> dict[str, Any]:
    r = await tenant.client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


class TestListWebhookDeliveries:
    async def test_each_delivery_with_its_attempts_newest_first(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        endpoint = await register(hooks.client, receiver.url)
        first = await emit(hooks)
        receiver.status, receiver.body = 500, b"down for maintenance"
        with receiving(receiver):
            await drain(hooks)
            receiver.status, receiver.body = 200, b"ok"
            second = await emit(hooks, "case.opened", case_id="c-1")
            await drain(hooks)
        page = await log(hooks, endpoint)
        assert page["next_cursor"] is None
        newest, oldest = page["data"]
        assert (newest["event_id"], oldest["event_id"]) == (str(second), str(first))
        assert oldest["event_type"] == "response.created"
        assert (oldest["status"], oldest["last_status_code"]) == ("pending", 500)
        [attempt] = oldest["attempts"]
        assert attempt["status_code"] == 500
        assert attempt["error"] == "HTTP 500"
        assert attempt["response_excerpt"] == "down for maintenance"
        assert isinstance(attempt["latency_ms"], int)
        assert oldest["next_attempt_at"] is not None
        assert (newest["status"], newest["next_attempt_at"]) == ("succeeded", None)
        assert [
            (a["status_code"], a["error"], a["response_excerpt"]) for a in newest["attempts"]
        ] == [(200, None, "ok")]

    async def test_filters_by_status_and_pages(self, hooks: Tenant, receiver: Receiver) -> None:
        endpoint = await register(hooks.client, receiver.url)
        made = [await emit(hooks) for _ in range(3)]
        with receiving(receiver):
            await drain(hooks)
        assert (await log(hooks, endpoint, status="failed"))["data"] == []
        first = await log(hooks, endpoint, status="succeeded", limit=2)
        rest = await log(hooks, endpoint, status="succeeded", limit=2, cursor=first["next_cursor"])
        assert rest["next_cursor"] is None
        listed = [d["event_id"] for d in first["data"] + rest["data"]]
        assert sorted(listed) == sorted(str(m) for m in made)
        assert len(set(listed)) == 3

    async def test_bad_parameters_are_422(self, hooks: Tenant, receiver: Receiver) -> None:
        endpoint = await register(hooks.client, receiver.url)
        path = f"/v1/webhooks/{endpoint['id']}/deliveries"
        assert_invalid(await hooks.client.get(path, params={"status": "lost"}), ["query", "status"])
        assert_invalid(await hooks.client.get(path, params={"cursor": "zz"}), ["query", "cursor"])

    async def test_another_workspaces_endpoint_is_404(
        self, hooks: Tenant, receiver: Receiver, engine: AsyncEngine
    ) -> None:
        endpoint = await register(hooks.client, receiver.url)
        await emit(hooks)
        await drain(hooks)
        async with hooks_tenant(engine, "other") as other:
            path = f"/v1/webhooks/{endpoint['id']}"
            assert_not_found(await other.client.get(f"{path}/deliveries"))
            assert_not_found(await other.client.post(f"{path}/test"))
            assert_not_found(
                await other.client.post(f"{path}/recover", json={"since": "2026-01-01T00:00:00Z"})
            )
            [delivery] = (await log(hooks, endpoint))["data"]
            assert_not_found(await other.client.post(f"{path}/deliveries/{delivery['id']}/retry"))


class TestRetryWebhookDelivery:
    async def test_sends_a_delivered_event_again_with_the_same_webhook_id(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        endpoint = await register(hooks.client, receiver.url)
        event_id = await emit(hooks)
        with receiving(receiver):
            await drain(hooks)
            [delivery] = (await log(hooks, endpoint))["data"]
            r = await hooks.client.post(
                f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/retry"
            )
            assert r.status_code == 202, r.text
            assert (r.json()["status"], len(r.json()["attempts"])) == ("pending", 1)
            await drain(hooks)
        assert [g.headers["webhook-id"] for g in receiver.received] == [str(event_id)] * 2
        verified(endpoint["secret"], receiver.received[1])
        [delivery] = (await log(hooks, endpoint))["data"]
        assert (delivery["status"], len(delivery["attempts"])) == ("succeeded", 2)

    async def test_a_retry_before_the_scheduled_attempt_is_not_doubled(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        endpoint = await register(hooks.client, receiver.url)
        await emit(hooks)
        await drain(hooks)  # down: attempt 2 is scheduled in 5 s
        [delivery] = (await log(hooks, endpoint))["data"]
        path = f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/retry"
        assert (await hooks.client.post(path)).status_code == 202
        with receiving(receiver):
            await drain(hooks)
            async with session_scope(hooks.db.sessionmaker) as session:  # the schedule's turn
                await session.execute(
                    update(Job).where(Job.workspace_id == hooks.id).values(run_at=func.now())
                )
            await drain(hooks)
        assert len(receiver.received) == 1
        assert len(await attempts(hooks)) == 2

    async def test_a_disabled_endpoint_is_409(self, hooks: Tenant, receiver: Receiver) -> None:
        endpoint = await register(hooks.client, receiver.url)
        await emit(hooks)
        await drain(hooks)
        [delivery] = (await log(hooks, endpoint))["data"]
        await hooks.client.patch(f"/v1/webhooks/{endpoint['id']}", json={"enabled": False})
        r = await hooks.client.post(
            f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery['id']}/retry"
        )
        assert problem(r, 409)["type"] == "/problems/conflict"

    async def test_an_unknown_delivery_is_404(self, hooks: Tenant, receiver: Receiver) -> None:
        endpoint = await register(hooks.client, receiver.url)
        r = await hooks.client.post(
            f"/v1/webhooks/{endpoint['id']}/deliveries/00000000-0000-4000-8000-000000000000/retry"
        )
        assert_not_found(r)


class TestRecoverWebhook:
    async def test_re_delivers_every_subscribed_event_since_the_instant(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        endpoint = await register(hooks.client, receiver.url, events=["response.created"])
        old = await emit(hooks)
        async with session_scope(hooks.db.sessionmaker) as session:
            await session.execute(
                update(Event)
                .where(Event.id == old)
                .values(occurred_at=func.now() - timedelta(days=2))
            )
            since = (await session.execute(select(func.now() - timedelta(days=1)))).scalar_one()
        delivered = await emit(hooks)
        await emit(hooks, "case.opened", case_id="c-1")
        with receiving(receiver):
            await drain(hooks)
            assert len(receiver.received) == 2  # old and delivered
            r = await hooks.client.post(
                f"/v1/webhooks/{endpoint['id']}/recover", json={"since": stamp(since)}
            )
            assert r.status_code == 202, r.text
            assert r.json() == {"since": stamp(since), "queued": 1}
            await drain(hooks)
        assert [g.headers["webhook-id"] for g in receiver.received[2:]] == [str(delivered)]

    async def test_events_the_endpoint_never_had_are_delivered_too(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        before = await emit(hooks)  # emitted before the endpoint existed
        await drain(hooks)
        endpoint = await register(hooks.client, receiver.url)
        with receiving(receiver):
            r = await hooks.client.post(
                f"/v1/webhooks/{endpoint['id']}/recover", json={"since": "2020-01-01T00:00:00Z"}
            )
            assert r.json()["queued"] == 1
            await drain(hooks)
        assert [g.headers["webhook-id"] for g in receiver.received] == [str(before)]

    async def test_since_must_be_an_instant(self, hooks: Tenant, receiver: Receiver) -> None:
        endpoint = await register(hooks.client, receiver.url)
        path = f"/v1/webhooks/{endpoint['id']}/recover"
        assert_invalid(await hooks.client.post(path, json={"since": 0}), ["body", "since"])
        assert_invalid(await hooks.client.post(path, json={}), ["body", "since"])


class TestSendWebhookTest:
    async def test_sends_webhook_test_to_this_endpoint_only(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        endpoint = await register(hooks.client, receiver.url, events=["case.closed"])
        await register(hooks.client, receiver.url.replace("/hooks", "/all"))
        headers = {"Idempotency-Key": "t-1"}
        r = await hooks.client.post(f"/v1/webhooks/{endpoint['id']}/test", headers=headers)
        assert r.status_code == 202, r.text
        again = await hooks.client.post(f"/v1/webhooks/{endpoint['id']}/test", headers=headers)
        assert again.json() == r.json()
        with receiving(receiver):
            await drain(hooks)
        [got] = receiver.received
        assert (got.path, got.headers["webhook-id"]) == ("/hooks", r.json()["event_id"])
        body = verified(endpoint["secret"], got)
        assert (body["type"], body["data"]["endpoint_id"]) == ("webhook.test", endpoint["id"])


class TestRolledBackRequest:
    async def test_a_request_that_fails_after_emitting_sends_nothing(
        self, hooks: Tenant, receiver: Receiver, engine: AsyncEngine
    ) -> None:
        await register(hooks.client, receiver.url)
        app = build_app(hooks.db.sessionmaker, engine, settings=WORKER)

        @app.post("/v1/emit-then-fail", include_in_schema=False)
        async def emit_then_fail(session: SessionDep, auth: AnySubject) -> None:
            await events.emit(session, hooks.id, "response.created", {"response_id": "r-x"})
            raise Conflict("the change failed after emitting")

        async with client_for(app, hooks.admin_key) as client:
            assert problem(await client.post("/v1/emit-then-fail"), 409)
        with receiving(receiver):
            await drain(hooks)
        assert receiver.received == []
        async with hooks.db.sessionmaker() as session:
            assert (
                list(await session.scalars(select(Event).where(Event.workspace_id == hooks.id)))
                == []
            )
