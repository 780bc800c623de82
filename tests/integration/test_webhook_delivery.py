"""Webhook delivery on real commits, to a real HTTP receiver on a local port: signed per
Standard Webhooks (verified with the `standardwebhooks` package, as a receiver would), retried
on the schedule until the receiver is back, the SSRF guard again at delivery, rotation overlap,
and an endpoint disabled after 5 days of failures."""

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from standardwebhooks.webhooks import WebhookVerificationError

from app.db import session_scope
from app.models import Event, Job, Workspace
from app.services import events
from app.services.deliveries import DELIVER_TASK, RETRY_SCHEDULE
from app.worker import Worker
from tests.support.clock import ago
from tests.support.harness import Tenant, build_app, new_tenant
from tests.support.processes import free_port
from tests.support.webhooks import (
    DATA,
    WORKER,
    FakeDns,
    Receiver,
    attempts,
    deliveries,
    drain,
    emit,
    fake_dns,
    hooks_tenant,
    receiving,
    register,
    retries_due_now,
    set_endpoint,
    verified,
)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    return fake_dns(monkeypatch)


@pytest_asyncio.fixture(loop_scope="session")
async def hooks(engine: AsyncEngine) -> AsyncIterator[Tenant]:
    async with hooks_tenant(engine) as tenant:
        yield tenant


@pytest.fixture
def receiver() -> Receiver:
    return Receiver(free_port())


class TestDelivery:
    async def test_a_committed_event_arrives_signed(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        endpoint = await register(hooks.client, receiver.url)
        event_id = await emit(hooks)
        with receiving(receiver):
            await drain(hooks)
        [got] = receiver.received
        assert got.path == "/hooks"
        assert got.headers["webhook-id"] == str(event_id)
        assert got.headers["content-type"] == "application/json"
        body = verified(endpoint["secret"], got)
        async with hooks.db.sessionmaker() as session:
            occurred = await session.scalar(select(Event.occurred_at).where(Event.id == event_id))
        assert occurred is not None
        assert body == {
            "type": "response.created",
            "timestamp": occurred.isoformat().replace("+00:00", "Z"),
            "data": DATA,
        }
        [delivery] = await deliveries(hooks)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
            "succeeded",
            1,
            204,
        )
        [made] = await attempts(hooks)
        assert (made.status_code, made.error, made.response_excerpt) == (204, None, None)

    async def test_another_secret_does_not_verify(self, hooks: Tenant, receiver: Receiver) -> None:
        await register(hooks.client, receiver.url)
        other = await register(hooks.client, receiver.url.replace("/hooks", "/other"))
        await emit(hooks)
        with receiving(receiver):
            await drain(hooks)
        mine = next(r for r in receiver.received if r.path == "/hooks")
        with pytest.raises(WebhookVerificationError):
            verified(other["secret"], mine)

    async def test_only_subscribed_enabled_endpoints_of_the_workspace_receive_it(
        self, hooks: Tenant, receiver: Receiver, engine: AsyncEngine
    ) -> None:
        base = receiver.url.removesuffix("/hooks")
        await register(hooks.client, f"{base}/cases", events=["case.opened"])
        await register(hooks.client, f"{base}/off", enabled=False)
        await register(hooks.client, f"{base}/responses", events=["response.created"])
        await register(hooks.client, f"{base}/all")
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        other = await new_tenant(
            sessionmaker, build_app(sessionmaker, engine, settings=WORKER), "x"
        )
        try:
            await register(other.client, f"{base}/other-workspace")
            await emit(hooks)
            with receiving(receiver):
                await drain(hooks)
        finally:
            async with session_scope(sessionmaker) as session:
                await session.execute(delete(Workspace).where(Workspace.id == other.id))
        assert sorted(r.path for r in receiver.received) == ["/all", "/responses"]

    async def test_a_dispatch_that_runs_again_delivers_once(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        await register(hooks.client, receiver.url)
        await emit(hooks)
        await drain(hooks)
        async with session_scope(hooks.db.sessionmaker) as session:  # the dispatch, run again
            await session.execute(
                update(Job)
                .where(Job.workspace_id == hooks.id, Job.task == events.DISPATCH_TASK)
                .values(status="queued", run_at=func.now())
            )
        with receiving(receiver):
            await retries_due_now(hooks)
            await drain(hooks)
        assert len(await deliveries(hooks)) == 1
        assert len(receiver.received) == 1

    async def test_a_backlog_delivers_each_event_before_later_events_are_dispatched(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        await register(hooks.client, receiver.url)
        first, second = await emit(hooks), await emit(hooks)  # two pending, in that order
        worker = Worker(hooks.db.sessionmaker, WORKER)
        with receiving(receiver):
            while not receiver.received:  # one job at a time, whatever else is due
                assert await worker.run_once()
            # The first event's attempt came before the second's dispatch, not after it.
            assert [d.event_id for d in await deliveries(hooks)] == [first]
            await drain(hooks)
        assert [r.headers["webhook-id"] for r in receiver.received] == [str(first), str(second)]


class TestRetries:
    async def test_a_receiver_that_is_down_gets_the_event_once_it_is_back(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        endpoint = await register(hooks.client, receiver.url)
        event_id = await emit(hooks)
        await drain(hooks)  # nothing listens on the port
        [delivery] = await deliveries(hooks)
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert delivery.next_attempt_at is not None
        assert delivery.last_attempt_at is not None
        assert delivery.next_attempt_at - delivery.last_attempt_at == RETRY_SCHEDULE[0]
        [failed] = await attempts(hooks)
        assert failed.status_code is None
        assert failed.error is not None
        assert failed.error.startswith("ConnectError")
        await drain(hooks)  # not due yet
        assert len(await attempts(hooks)) == 1
        receiver.status = 503
        with receiving(receiver):
            await retries_due_now(hooks)
            await drain(hooks)
            receiver.status = 200
            await retries_due_now(hooks)
            await drain(hooks)
        assert [r.headers["webhook-id"] for r in receiver.received] == [str(event_id)] * 2
        for got in receiver.received:
            verified(endpoint["secret"], got)
        assert [(a.status_code, a.error) for a in await attempts(hooks)] == [
            (None, failed.error),
            (503, "HTTP 503"),
            (200, None),
        ]
        [delivery] = await deliveries(hooks)
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
            "succeeded",
            3,
            None,
        )

    async def test_a_worker_that_dies_mid_delivery_loses_nothing(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        await register(hooks.client, receiver.url)
        await emit(hooks)
        dying = Worker(hooks.db.sessionmaker, WORKER)
        assert await dying.run_once()  # the dispatch: the delivery and its job
        claimed = await dying.claim()  # the attempt's job, claimed by a worker that then dies
        assert claimed is not None
        assert claimed.task == DELIVER_TASK
        async with session_scope(hooks.db.sessionmaker) as session:  # its lease runs out
            await session.execute(
                update(Job).where(Job.id == claimed.id).values(locked_until=ago(seconds=1))
            )
        with receiving(receiver):
            await drain(hooks)
        assert len(receiver.received) == 1
        [delivery] = await deliveries(hooks)
        assert delivery.status == "succeeded"

    async def test_a_redirect_is_not_followed(self, hooks: Tenant, receiver: Receiver) -> None:
        await register(hooks.client, receiver.url)
        receiver.status, receiver.headers = 302, {"Location": receiver.url + "/elsewhere"}
        await emit(hooks)
        with receiving(receiver):
            await drain(hooks)
        assert [r.path for r in receiver.received] == ["/hooks"]
        [made] = await attempts(hooks)
        assert (made.status_code, made.error) == (302, "HTTP 302: redirects are not followed")

    async def test_only_the_first_kib_of_the_answer_is_kept(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        await register(hooks.client, receiver.url)
        receiver.status, receiver.body = 500, b"x" * 5000
        await emit(hooks)
        with receiving(receiver):
            await drain(hooks)
        [made] = await attempts(hooks)
        assert (made.status_code, made.response_excerpt) == (500, "x" * 1024)

    async def test_the_schedule_ends_in_failure(self, hooks: Tenant, receiver: Receiver) -> None:
        await register(hooks.client, receiver.url)
        receiver.status = 500
        await emit(hooks)
        with receiving(receiver):
            for _ in range(len(RETRY_SCHEDULE) + 1):
                await drain(hooks)
                await retries_due_now(hooks)
            await drain(hooks)
        assert len(receiver.received) == len(RETRY_SCHEDULE) + 1
        [delivery] = await deliveries(hooks)
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
            "failed",
            len(RETRY_SCHEDULE) + 1,
            None,
        )


class TestGuardAtDelivery:
    async def test_a_name_re_pointed_at_a_private_address_is_not_called(
        self, hooks: Tenant, receiver: Receiver, dns: FakeDns
    ) -> None:
        dns.table["rebind.example.com"] = ["93.184.215.20"]
        await register(hooks.client, f"http://rebind.example.com:{receiver.port}/hooks")
        dns.table["rebind.example.com"] = ["127.0.0.1"]  # DNS rebinding
        await emit(hooks)
        with receiving(receiver):
            await drain(hooks, WORKER.model_copy(update={"webhooks_allow_private": False}))
        assert receiver.received == []
        [made] = await attempts(hooks)
        assert made.error == (
            "refused: the host 'rebind.example.com' resolves to 127.0.0.1 is not a public address"
        )

    async def test_a_metadata_address_is_refused_even_with_allow_private(
        self, hooks: Tenant, receiver: Receiver, dns: FakeDns
    ) -> None:
        dns.table["rebind.example.com"] = ["127.0.0.1"]
        await register(hooks.client, f"http://rebind.example.com:{receiver.port}/hooks")
        dns.table["rebind.example.com"] = ["169.254.169.254"]
        await emit(hooks)
        await drain(hooks)
        [made] = await attempts(hooks)
        assert made.error == (
            "refused: the host 'rebind.example.com' resolves to 169.254.169.254 is a cloud "
            "metadata address"
        )

    async def test_the_host_header_names_the_urls_host(
        self, hooks: Tenant, receiver: Receiver, dns: FakeDns
    ) -> None:
        await register(hooks.client, f"http://localhost:{receiver.port}/hooks")
        await emit(hooks)
        with receiving(receiver):
            await drain(hooks)
        assert receiver.received[0].headers["host"] == f"localhost:{receiver.port}"


class TestRotation:
    async def test_both_secrets_sign_during_the_overlap_then_only_the_new_one(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        endpoint = await register(hooks.client, receiver.url)
        r = await hooks.client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret")
        new = r.json()["secret"]
        await emit(hooks)
        with receiving(receiver):
            await drain(hooks)
            [during] = receiver.received
            assert len(during.headers["webhook-signature"].split(" ")) == 2
            assert verified(endpoint["secret"], during) == verified(new, during)
            await set_endpoint(hooks, endpoint["id"], previous_secret_expires_at=ago(seconds=1))
            await emit(hooks)
            await drain(hooks)
        after = receiver.received[1]
        assert len(after.headers["webhook-signature"].split(" ")) == 1
        assert verified(new, after)["type"] == "response.created"
        with pytest.raises(WebhookVerificationError):
            verified(endpoint["secret"], after)


class TestDisabling:
    async def test_an_endpoint_failing_for_5_days_is_disabled_and_says_so(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        failing = await register(hooks.client, receiver.url, events=["response.created"])
        watcher = await register(hooks.client, receiver.url.replace("/hooks", "/watch"))
        receiver.statuses = {"/hooks": 500}
        await emit(hooks)
        with receiving(receiver):
            await drain(hooks)
            read = (await hooks.client.get(f"/v1/webhooks/{failing['id']}")).json()
            assert read["enabled"] is True
            assert read["failing_since"] is not None
            await set_endpoint(hooks, failing["id"], failing_since=ago(days=5, seconds=1))
            await retries_due_now(hooks)
            await drain(hooks)
        read = (await hooks.client.get(f"/v1/webhooks/{failing['id']}")).json()
        assert (read["enabled"], read["disabled_reason"]) == (False, "failing")
        [delivery] = [d for d in await deliveries(hooks) if str(d.endpoint_id) == failing["id"]]
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 2, None)
        async with hooks.db.sessionmaker() as session:
            [disabled] = await session.scalars(
                select(Event).where(
                    Event.workspace_id == hooks.id, Event.type == "webhook.disabled"
                )
            )
        assert disabled.data == {
            "endpoint_id": failing["id"],
            "url": receiver.url,
            "reason": "failing",
            "failing_since": disabled.data["failing_since"],
        }
        told = [r for r in receiver.received if r.path == "/watch"]
        assert [json.loads(r.body)["type"] for r in told] == [
            "response.created",
            "webhook.disabled",
        ]
        verified(watcher["secret"], told[-1])
        r = await hooks.client.patch(f"/v1/webhooks/{failing['id']}", json={"enabled": True})
        assert (r.json()["enabled"], r.json()["disabled_reason"], r.json()["failing_since"]) == (
            True,
            None,
            None,
        )

    async def test_a_success_ends_the_run_of_failures(
        self, hooks: Tenant, receiver: Receiver
    ) -> None:
        endpoint = await register(hooks.client, receiver.url)
        receiver.status = 500
        await emit(hooks)
        with receiving(receiver):
            await drain(hooks)
            receiver.status = 204
            await retries_due_now(hooks)
            await drain(hooks)
        read = (await hooks.client.get(f"/v1/webhooks/{endpoint['id']}")).json()
        assert (read["enabled"], read["failing_since"]) == (True, None)
