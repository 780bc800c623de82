"""The event outbox on real commits: an event commits or vanishes with its change, and the worker
hands each committed one to the subscribers of its type, in the job's transaction."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import session_scope
from app.jobs import TASKS, JobContext
from app.models import Event, Job, Workspace
from app.outbox import SUBSCRIBERS, Dispatched, Subscribers
from app.services import events
from app.worker import Worker
from tests.support.harness import MakeTenant, Tenant

SETTINGS = Settings(database_url="postgresql://unused@localhost/unused")


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[Dispatched]:
    """Every event dispatched while the test runs, in order (a subscriber of every type)."""
    received: list[Dispatched] = []
    monkeypatch.setattr(SUBSCRIBERS, "by_type", {})

    @SUBSCRIBERS.subscribe()
    async def note(event: Dispatched) -> None:
        received.append(event)

    return received


async def _events(tenant: Tenant) -> list[Event]:
    async with tenant.db.sessionmaker() as session:
        rows = await session.scalars(
            select(Event).where(Event.workspace_id == tenant.id).order_by(Event.seq)
        )
        return list(rows)


async def _dispatch_jobs(tenant: Tenant) -> list[Job]:
    async with tenant.db.sessionmaker() as session:
        rows = await session.scalars(
            select(Job)
            .where(Job.workspace_id == tenant.id, Job.task == events.DISPATCH_TASK)
            .order_by(Job.id)
        )
        return list(rows)


class TestEmit:
    async def test_events_and_their_dispatch_jobs_commit_with_the_change(
        self, committed: Tenant
    ) -> None:
        async with session_scope(committed.db.sessionmaker) as session:
            ids = await events.emit_many(
                session,
                committed.id,
                [
                    ("response.created", {"response_id": "r1", "score": 9}),
                    ("invitation.answered", {"invitation_id": "i1"}),
                ],
            )
        stored = await _events(committed)
        assert [(e.id, e.type, e.data) for e in stored] == [
            (ids[0], "response.created", {"response_id": "r1", "score": 9}),
            (ids[1], "invitation.answered", {"invitation_id": "i1"}),
        ]
        jobs = await _dispatch_jobs(committed)
        assert [(j.payload, j.status) for j in jobs] == [
            ({"event_id": str(ids[0])}, "queued"),
            ({"event_id": str(ids[1])}, "queued"),
        ]

    async def test_a_rolled_back_change_emits_nothing(self, committed: Tenant) -> None:
        async def change_that_fails() -> None:
            async with session_scope(committed.db.sessionmaker) as session:
                await events.emit(session, committed.id, "response.created", {"response_id": "x"})
                raise RuntimeError("the change failed after emitting")

        with pytest.raises(RuntimeError):
            await change_that_fails()
        assert await _events(committed) == []
        assert await _dispatch_jobs(committed) == []

    async def test_data_is_stored_as_json(self, committed: Tenant) -> None:
        response_id = uuid.uuid4()
        async with session_scope(committed.db.sessionmaker) as session:
            await events.emit(session, committed.id, "response.created", {"id": response_id})
        [event] = await _events(committed)
        assert event.data == {"id": str(response_id)}

    async def test_an_undeclared_type_is_a_programming_error(self, committed: Tenant) -> None:
        async with session_scope(committed.db.sessionmaker) as session:
            with pytest.raises(events.UnknownEventType):
                await events.emit(session, committed.id, "response.vanished", {})

    async def test_nothing_to_emit_writes_nothing(self, committed: Tenant) -> None:
        async with session_scope(committed.db.sessionmaker) as session:
            assert await events.emit_many(session, committed.id, []) == []
        assert await _events(committed) == []


class TestDispatch:
    async def test_the_worker_hands_each_event_to_its_subscribers_once(
        self, committed: Tenant, seen: list[Dispatched]
    ) -> None:
        async with session_scope(committed.db.sessionmaker) as session:
            first, second = await events.emit_many(
                session,
                committed.id,
                [("response.created", {"n": 1}), ("case.opened", {"n": 2})],
            )
        worker = Worker(committed.db.sessionmaker, SETTINGS)
        await worker.drain()
        mine = [e for e in seen if e.workspace_id == committed.id]
        assert [(e.id, e.type, e.data) for e in mine] == [
            (first, "response.created", {"n": 1}),
            (second, "case.opened", {"n": 2}),
        ]
        assert {j.status for j in await _dispatch_jobs(committed)} == {"done"}
        await worker.drain()
        assert len([e for e in seen if e.workspace_id == committed.id]) == 2

    async def test_only_subscribers_of_the_type_are_called(
        self, committed: Tenant, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        registry = Subscribers()
        monkeypatch.setattr(SUBSCRIBERS, "by_type", registry.by_type)
        calls: list[str] = []

        @SUBSCRIBERS.subscribe("case.opened", "case.closed")
        async def cases(event: Dispatched) -> None:
            calls.append(event.type)

        async with session_scope(committed.db.sessionmaker) as session:
            await events.emit_many(
                session,
                committed.id,
                [("response.created", {}), ("case.closed", {}), ("case.opened", {})],
            )
        await Worker(committed.db.sessionmaker, SETTINGS).drain()
        assert calls == ["case.closed", "case.opened"]

    async def test_a_failing_subscriber_rolls_its_writes_back_and_the_event_is_retried(
        self, committed: Tenant, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(SUBSCRIBERS, "by_type", {})
        failures = [RuntimeError("receiver bug")]

        @SUBSCRIBERS.subscribe("response.created")
        async def rename(event: Dispatched) -> None:
            await event.session.execute(
                update(Workspace).where(Workspace.id == event.workspace_id).values(name="renamed")
            )
            if failures:
                raise failures.pop()

        async with session_scope(committed.db.sessionmaker) as session:
            await events.emit(session, committed.id, "response.created", {})
        worker = Worker(committed.db.sessionmaker, SETTINGS)
        await worker.drain()
        [job] = await _dispatch_jobs(committed)
        assert (job.status, job.attempts) == ("queued", 1)
        assert "receiver bug" in (job.last_error or "")
        async with committed.db.sessionmaker() as session:
            workspace = await session.get(Workspace, committed.id)
            assert workspace is not None
            assert workspace.name != "renamed"
            # Due now, as if its backoff had passed.
            await session.execute(update(Job).where(Job.id == job.id).values(run_at=func.now()))
            await session.commit()
        await worker.drain()
        [job] = await _dispatch_jobs(committed)
        assert (job.status, job.attempts) == ("done", 2)
        async with committed.db.sessionmaker() as session:
            workspace = await session.get(Workspace, committed.id)
            assert workspace is not None
            assert workspace.name == "renamed"

    async def test_an_event_whose_row_is_gone_is_done(
        self, committed: Tenant, seen: list[Dispatched]
    ) -> None:
        async with session_scope(committed.db.sessionmaker) as session:
            await events.emit(session, committed.id, "response.created", {})
            await session.execute(delete(Event).where(Event.workspace_id == committed.id))
        await Worker(committed.db.sessionmaker, SETTINGS).drain()
        assert [e for e in seen if e.workspace_id == committed.id] == []
        assert {j.status for j in await _dispatch_jobs(committed)} == {"done"}

    async def test_an_event_is_dispatched_in_its_own_workspace_only(
        self, committed: Tenant, make_tenant: MakeTenant, seen: list[Dispatched]
    ) -> None:
        async with session_scope(committed.db.sessionmaker) as session:
            [event_id] = await events.emit_many(session, committed.id, [("webhook.test", {})])
            # A dispatch job naming that event under another workspace finds nothing.
            other = uuid.uuid4()
            session.add(Workspace(id=other, name="other-ws"))
            await session.flush()
            session.add(
                Job(
                    task=events.DISPATCH_TASK,
                    payload={"event_id": str(event_id)},
                    workspace_id=other,
                )
            )
        try:
            await Worker(committed.db.sessionmaker, SETTINGS).drain()
            assert [(e.workspace_id, e.id) for e in seen] == [(committed.id, event_id)]
        finally:
            async with session_scope(committed.db.sessionmaker) as session:
                await session.execute(delete(Workspace).where(Workspace.id == other))


class TestPurge:
    async def test_events_older_than_the_retention_are_purged(self, committed: Tenant) -> None:
        async with session_scope(committed.db.sessionmaker) as session:
            old, recent = await events.emit_many(
                session, committed.id, [("webhook.test", {}), ("webhook.test", {})]
            )
            await session.execute(
                update(Event)
                .where(Event.id == old)
                .values(occurred_at=func.now() - timedelta(days=31))
            )
        async with session_scope(committed.db.sessionmaker) as session:
            await TASKS.tasks["events.purge"].handler(_context(session))
        assert [e.id for e in await _events(committed)] == [recent]


def _context(session: AsyncSession) -> JobContext:
    return JobContext(
        session=session,
        settings=SETTINGS,
        job_id=0,
        workspace_id=None,
        payload={},
        attempt=1,
    )
