"""The job queue and the worker, on real commits: several workers, leases, retries, periods."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, in_workspace, session_scope
from app.jobs import TASKS, JobContext, Registry, enqueue
from app.models import IdempotencyRecord, Job, Workspace
from app.services.keys import create_workspace
from app.worker import Worker, worker_engine
from tests.support.harness import as_service
from tests.support.processes import eventually

SETTINGS = Settings(database_url="postgresql://unused@localhost/unused")


class Recorder:
    """A registry of test tasks that note which worker ran which job."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.runs: list[tuple[int, str]] = []
        self.failures_left = 0
        registry = self.registry

        @registry.task("test.record")
        async def record(ctx: JobContext) -> None:
            await asyncio.sleep(0.005)  # let the other workers claim meanwhile
            self.runs.append((ctx.job_id, str(ctx.payload["worker_hint"])))

        @registry.task("test.flaky", max_attempts=3, backoff=timedelta(seconds=10))
        async def flaky(ctx: JobContext) -> None:
            if self.failures_left:
                self.failures_left -= 1
                raise RuntimeError(f"boom on attempt {ctx.attempt}")
            self.runs.append((ctx.job_id, "flaky"))

        @registry.task("test.write")
        async def write(ctx: JobContext) -> None:
            # The task's own transaction: this write commits with the job's `done`, or not at all.
            await ctx.session.execute(
                update(Workspace)
                .where(Workspace.id == ctx.workspace_id)
                .values(name=str(ctx.payload["name"]))
            )
            if ctx.payload.get("fail"):
                raise ValueError("after the write")

        @registry.task("test.hourly", every=timedelta(hours=1))
        async def hourly(ctx: JobContext) -> None:
            self.runs.append((ctx.job_id, "hourly"))


@pytest_asyncio.fixture(loop_scope="session")
async def committed_sessions(
    engine: AsyncEngine,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions that really commit (workers claim across connections), as the service's role;
    jobs deleted after."""
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    yield as_service(sessionmaker)
    async with session_scope(sessionmaker) as session:
        await session.execute(delete(Job))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def _jobs(
    sessionmaker: async_sessionmaker[AsyncSession], workspace_id: uuid.UUID | None = None
) -> list[Job]:
    """The jobs of `workspace_id` (None: the jobs of no workspace)."""
    async with sessionmaker() as session:
        await in_workspace(session, workspace_id)
        return list(await session.scalars(select(Job).order_by(Job.id)))


async def _queue(
    sessionmaker: async_sessionmaker[AsyncSession], registry: Registry, name: str, **payload: object
) -> int:
    async with session_scope(sessionmaker) as session:
        job_id = await enqueue(session, name, payload, registry=registry)
    assert job_id is not None
    return job_id


class TestEnqueue:
    async def test_a_job_vanishes_with_the_transaction_that_queued_it(
        self, sessionmaker: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        async def change_that_fails() -> None:
            async with session_scope(sessionmaker) as session:
                await enqueue(
                    session, "test.record", {"worker_hint": "x"}, registry=recorder.registry
                )
                raise RuntimeError("the change failed")

        with pytest.raises(RuntimeError):
            await change_that_fails()
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Job)) == 0

    async def test_a_job_commits_with_its_change(
        self, sessionmaker: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        async with session_scope(sessionmaker) as session:
            job_id = await enqueue(
                session, "test.record", {"worker_hint": "x"}, registry=recorder.registry
            )
        async with sessionmaker() as session:
            job = await session.get(Job, job_id)
        assert job is not None
        assert (job.task, job.status, job.attempts, job.payload) == (
            "test.record",
            "queued",
            0,
            {"worker_hint": "x"},
        )
        assert (job.max_attempts, job.lease_seconds) == (5, 300)

    async def test_the_same_dedupe_key_is_queued_once(
        self, sessionmaker: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        async with session_scope(sessionmaker) as session:
            first = await enqueue(
                session, "test.record", dedupe_key="once", registry=recorder.registry
            )
            second = await enqueue(
                session, "test.record", dedupe_key="once", registry=recorder.registry
            )
        assert first is not None
        assert second is None

    async def test_an_undeclared_task_is_refused(
        self, sessionmaker: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        async with session_scope(sessionmaker) as session:
            with pytest.raises(ValueError, match="no task 'nope' is declared"):
                await enqueue(session, "nope", registry=recorder.registry)

    def test_a_task_is_declared_once(self, recorder: Recorder) -> None:
        with pytest.raises(ValueError, match="declared twice"):
            recorder.registry.task("test.record")(lambda ctx: asyncio.sleep(0))

    def test_the_service_declares_its_upkeep_as_periodic_tasks(self) -> None:
        assert {t.name: t.every for t in TASKS.periodic()} == {
            "deletions.purge": timedelta(hours=1),
            "idempotency.purge": timedelta(hours=1),
            "events.purge": timedelta(hours=1),
            "jobs.purge": timedelta(hours=1),
            "rate_limits.purge": timedelta(minutes=5),
            "statistics.refresh": timedelta(seconds=30),
            "tallies.fold": timedelta(seconds=10),
        }


class TestWorker:
    async def test_runs_a_due_job_once_and_marks_it_done(
        self, committed_sessions: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        job_id = await _queue(committed_sessions, recorder.registry, "test.record", worker_hint="a")
        worker = Worker(committed_sessions, SETTINGS, registry=recorder.registry, name="w1")

        assert await worker.drain() == 1
        assert await worker.run_once() is False

        assert recorder.runs == [(job_id, "a")]
        [job] = await _jobs(committed_sessions)
        assert (job.status, job.attempts, job.locked_by, job.locked_until, job.last_error) == (
            "done",
            1,
            None,
            None,
            None,
        )
        assert job.started_at is not None
        assert job.finished_at is not None

    async def test_several_workers_never_take_the_same_job(
        self, committed_sessions: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        queued = {
            await _queue(committed_sessions, recorder.registry, "test.record", worker_hint=str(i))
            for i in range(40)
        }
        workers = [
            Worker(committed_sessions, SETTINGS, registry=recorder.registry, name=f"w{i}")
            for i in range(4)
        ]

        ran = await asyncio.gather(*(w.drain() for w in workers))

        assert sum(ran) == 40
        assert sorted(job_id for job_id, _ in recorder.runs) == sorted(queued)
        assert sum(1 for n in ran if n) > 1  # the work really was shared
        assert {j.status for j in await _jobs(committed_sessions)} == {"done"}

    async def test_a_job_not_yet_due_waits(
        self, committed_sessions: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        async with session_scope(committed_sessions) as session:
            later = datetime.now(UTC) + timedelta(hours=1)
            await enqueue(
                session,
                "test.record",
                {"worker_hint": "x"},
                run_at=later,
                registry=recorder.registry,
            )
        worker = Worker(committed_sessions, SETTINGS, registry=recorder.registry)
        assert await worker.run_once() is False
        assert recorder.runs == []

    async def test_a_failing_job_is_retried_later_then_fails(
        self, committed_sessions: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        recorder.failures_left = 5
        job_id = await _queue(committed_sessions, recorder.registry, "test.flaky")
        worker = Worker(committed_sessions, SETTINGS, registry=recorder.registry, name="w1")

        assert await worker.run_once() is True
        [job] = await _jobs(committed_sessions)
        assert (job.status, job.attempts, job.last_error) == (
            "queued",
            1,
            "RuntimeError: boom on attempt 1",
        )
        assert job.locked_by is None
        delay = job.run_at - job.started_at  # type: ignore[operator]
        # 10 s after the failure was recorded, which is a moment after the claim.
        assert timedelta(seconds=10) <= delay < timedelta(seconds=15)
        assert await worker.run_once() is False  # not due yet

        for expected_attempt in (2, 3):
            async with session_scope(committed_sessions) as session:
                await session.execute(update(Job).values(run_at=func.now()))
            assert await worker.run_once() is True
            [job] = await _jobs(committed_sessions)
            assert job.attempts == expected_attempt
            assert job.last_error == f"RuntimeError: boom on attempt {expected_attempt}"
        assert job.status == "failed"
        assert job.finished_at is not None
        assert recorder.runs == []
        assert job.id == job_id

    async def test_a_retry_after_a_failure_succeeds(
        self, committed_sessions: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        recorder.failures_left = 1
        job_id = await _queue(committed_sessions, recorder.registry, "test.flaky")
        worker = Worker(committed_sessions, SETTINGS, registry=recorder.registry)
        await worker.run_once()
        async with session_scope(committed_sessions) as session:
            await session.execute(update(Job).values(run_at=func.now()))

        await worker.run_once()

        [job] = await _jobs(committed_sessions)
        assert (job.status, job.attempts, job.last_error) == ("done", 2, None)
        assert recorder.runs == [(job_id, "flaky")]

    async def test_a_failed_job_keeps_none_of_its_writes(
        self, committed_sessions: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        async with session_scope(committed_sessions) as session:
            workspace, _ = await create_workspace(session, "before")
            await enqueue(
                session,
                "test.write",
                {"name": "after", "fail": True},
                workspace_id=workspace.id,
                registry=recorder.registry,
            )
            await enqueue(
                session,
                "test.write",
                {"name": "written"},
                workspace_id=workspace.id,
                registry=recorder.registry,
            )
        try:
            worker = Worker(committed_sessions, SETTINGS, registry=recorder.registry)
            assert await worker.drain() == 2
            async with committed_sessions() as session:
                name = await session.scalar(
                    select(Workspace.name).where(Workspace.id == workspace.id)
                )
            assert name == "written"
            jobs = await _jobs(committed_sessions, workspace.id)
            assert [j.status for j in jobs] == ["queued", "done"]
        finally:
            async with session_scope(committed_sessions) as session:
                await session.execute(delete(Workspace).where(Workspace.id == workspace.id))
        # A workspace's jobs go with it.
        assert await _jobs(committed_sessions, workspace.id) == []

    async def test_a_job_whose_worker_died_is_claimed_again_after_its_lease(
        self, committed_sessions: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        job_id = await _queue(committed_sessions, recorder.registry, "test.record", worker_hint="b")
        dead = Worker(committed_sessions, SETTINGS, registry=recorder.registry, name="dead")
        alive = Worker(committed_sessions, SETTINGS, registry=recorder.registry, name="alive")
        claimed = await dead.claim()  # and then it dies, never finishing
        assert claimed is not None
        assert claimed.id == job_id

        assert await alive.run_once() is False  # the lease still holds
        async with session_scope(committed_sessions) as session:
            await session.execute(
                update(Job).values(locked_until=func.now() - timedelta(seconds=1))
            )
        assert await alive.run_once() is True

        [job] = await _jobs(committed_sessions)
        assert (job.status, job.attempts) == ("done", 2)
        assert recorder.runs == [(job_id, "b")]

    async def test_a_task_this_worker_does_not_know_is_left_to_one_that_does(
        self, committed_sessions: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        # A rolling deploy: a newer worker queued a task the older code does not declare.
        newer = Registry()
        ran: list[int] = []

        @newer.task("test.newer")
        async def newer_task(ctx: JobContext) -> None:
            ran.append(ctx.job_id)

        job_id = await _queue(committed_sessions, newer, "test.newer")
        older = Worker(committed_sessions, SETTINGS, registry=recorder.registry)

        assert await older.run_once() is False
        [job] = await _jobs(committed_sessions)
        assert (job.status, job.attempts, job.locked_by) == ("queued", 0, None)

        assert await Worker(committed_sessions, SETTINGS, registry=newer).run_once() is True
        assert ran == [job_id]

    async def test_a_worker_that_lost_its_lease_keeps_none_of_the_work(
        self, committed_sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        registry = Registry()

        @registry.task("test.overran")
        async def overran(ctx: JobContext) -> None:
            await ctx.session.execute(
                update(Workspace).where(Workspace.id == ctx.workspace_id).values(name="twice")
            )
            # Meanwhile its lease ran out and another worker took the job over.
            async with session_scope(committed_sessions) as other:
                await in_workspace(other, ctx.workspace_id)
                await other.execute(update(Job).values(locked_by="the-other-worker"))

        async with session_scope(committed_sessions) as session:
            workspace, _ = await create_workspace(session, "once")
            await enqueue(session, "test.overran", workspace_id=workspace.id, registry=registry)
        try:
            assert await Worker(committed_sessions, SETTINGS, registry=registry).run_once()
            async with committed_sessions() as session:
                name = await session.scalar(
                    select(Workspace.name).where(Workspace.id == workspace.id)
                )
                await in_workspace(session, workspace.id)
                job = await session.scalar(select(Job))
            assert name == "once"
            assert job is not None
            assert (job.status, job.locked_by) == ("running", "the-other-worker")
        finally:
            async with session_scope(committed_sessions) as session:
                await session.execute(delete(Workspace).where(Workspace.id == workspace.id))

    async def test_a_long_job_keeps_its_lease(
        self, committed_sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        registry = Registry()
        started = asyncio.Event()

        @registry.task("test.long", lease=timedelta(seconds=2))
        async def long(ctx: JobContext) -> None:
            started.set()
            await asyncio.sleep(3.0)  # longer than its lease

        await _queue(committed_sessions, registry, "test.long")
        busy = Worker(committed_sessions, SETTINGS, registry=registry, name="busy")
        other = Worker(committed_sessions, SETTINGS, registry=registry, name="other")
        running = asyncio.create_task(busy.run_once())
        await started.wait()
        await asyncio.sleep(2.5)  # past the first lease, which the busy worker renewed

        assert await other.run_once() is False
        assert await running is True
        [job] = await _jobs(committed_sessions)
        assert (job.status, job.attempts) == ("done", 1)

    async def test_a_periodic_task_is_queued_once_per_period_by_any_number_of_workers(
        self, committed_sessions: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        workers = [
            Worker(committed_sessions, SETTINGS, registry=recorder.registry, name=f"w{i}")
            for i in range(3)
        ]

        queued = await asyncio.gather(*(w.schedule_periodic() for w in workers))
        again = await workers[0].schedule_periodic()
        ran = sum(await asyncio.gather(*(w.drain() for w in workers)))

        assert (sum(queued), again, ran) == (1, 0, 1)
        [job] = await _jobs(committed_sessions)
        assert job.task == "test.hourly"
        assert job.status == "done"
        assert job.dedupe_key == f"test.hourly@{job.run_at.isoformat()}"
        assert (job.run_at.minute, job.run_at.second, job.run_at.microsecond) == (0, 0, 0)

    async def test_a_worker_looks_again_only_when_a_new_period_starts(
        self, committed_sessions: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        worker = Worker(committed_sessions, SETTINGS, registry=recorder.registry)
        assert await worker.schedule_periodic() == 1
        async with session_scope(committed_sessions) as session:
            await session.execute(delete(Job))

        # Within the same hour the worker knows it queued this period's job already.
        assert await worker.schedule_periodic() == 0
        assert await _jobs(committed_sessions) == []

        worker._next_period = datetime.now(UTC) - timedelta(seconds=1)  # as if an hour passed
        assert await worker.schedule_periodic() == 1

    async def test_run_has_several_jobs_in_hand_at_once(
        self, committed_sessions: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        meeting = asyncio.Barrier(2)

        @recorder.registry.task("test.together", max_attempts=1)
        async def together(ctx: JobContext) -> None:
            async with asyncio.timeout(5):  # one job at a time would wait here in vain
                await meeting.wait()
            recorder.runs.append((ctx.job_id, "together"))

        queued = {await _queue(committed_sessions, recorder.registry, "test.together", n=n)
                  for n in range(2)}  # fmt: skip

        def met() -> list[int]:  # (the periodic job runs too)
            return [job_id for job_id, what in recorder.runs if what == "together"]

        stop = asyncio.Event()
        worker = Worker(committed_sessions, SETTINGS, registry=recorder.registry)
        running = asyncio.create_task(worker.run(stop, poll_seconds=0.05, concurrency=2))
        try:
            await eventually(lambda: len(met()) >= 2, "both jobs to meet", seconds=10)
        finally:
            stop.set()
            await asyncio.wait_for(running, timeout=10)

        assert set(met()) == queued
        jobs = [j for j in await _jobs(committed_sessions) if j.task == "test.together"]
        assert [(j.status, j.attempts) for j in jobs] == [("done", 1), ("done", 1)]

    async def test_run_loops_until_stopped(
        self, committed_sessions: async_sessionmaker[AsyncSession], recorder: Recorder
    ) -> None:
        stop = asyncio.Event()
        worker = Worker(committed_sessions, SETTINGS, registry=recorder.registry)
        running = asyncio.create_task(worker.run(stop, poll_seconds=0.05))
        job_id = await _queue(committed_sessions, recorder.registry, "test.record", worker_hint="c")
        # (The periodic job may well run first.)
        await eventually(lambda: (job_id, "c") in recorder.runs, "the job to run", seconds=5)
        stop.set()
        await asyncio.wait_for(running, timeout=5)

        assert (job_id, "c") in recorder.runs
        assert {j.task for j in await _jobs(committed_sessions)} == {"test.record", "test.hourly"}


class TestWorkerEngine:
    async def test_the_worker_commits_without_waiting_for_the_disk_and_the_api_waits(
        self, database_url: str
    ) -> None:
        settings = Settings(database_url=database_url)
        worker, api = (
            worker_engine(database_url, settings),
            create_engine(database_url, settings, application_name="nps-api", generic_plans=True),
        )
        try:
            for engine, commit in ((worker, "off"), (api, "on")):
                async with engine.connect() as connection:
                    shown = await connection.execute(
                        text(
                            "SELECT current_setting('synchronous_commit'), "
                            "current_setting('plan_cache_mode')"
                        )
                    )
                    assert tuple(shown.one()) == (commit, "auto")
        finally:
            await worker.dispose()
            await api.dispose()

    async def test_a_claim_walks_the_queue_in_order_on_statistics_of_an_empty_queue(
        self, database_url: str, committed_sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        async with session_scope(committed_sessions) as session:
            await session.execute(delete(Job))
            # What autovacuum saw: the finished jobs a service keeps, and nothing due.
            await session.execute(
                text(
                    "INSERT INTO jobs (task, payload, status, finished_at) "
                    "SELECT 'test.record', '{}'::jsonb, 'done', now() "
                    "FROM generate_series(1, 3000)"
                )
            )
        # Committed: the column statistics ANALYZE writes are transactional, and a session
        # closed without a commit rolled them back, leaving whatever an earlier test's load
        # (or autovacuum, on the embedded server) had left (a seq scan and a sort, once).
        async with session_scope(committed_sessions) as session:
            await session.execute(text("ANALYZE jobs"))
        async with session_scope(committed_sessions) as session:  # then a backlog
            await session.execute(
                text(
                    "INSERT INTO jobs (task, payload) "
                    "SELECT 'test.record', '{}'::jsonb FROM generate_series(1, 2000)"
                )
            )
        engine = worker_engine(database_url, Settings(database_url=database_url))
        try:
            async with engine.connect() as connection:
                # The claim is claim_job (migration 0013): the plan of the statement it runs.
                body = await connection.scalar(
                    text("SELECT prosrc FROM pg_proc WHERE proname = 'claim_job'")
                )
                claim = body.replace("_worker", "'w'").replace("_known", "ARRAY['test.record']")
                plan = await connection.execute(text("EXPLAIN " + claim))
                shown = "\n".join(row[0] for row in plan)
        finally:
            await engine.dispose()
        # Not a bitmap scan of every due job and a sort of them all, for every claim.
        assert "Bitmap" not in shown, shown
        assert "Sort" not in shown, shown
        assert "Index Scan using ix_jobs_claimable" in shown, shown

    async def test_a_worker_on_its_engine_runs_a_job_and_its_commit_is_seen(
        self, database_url: str, recorder: Recorder
    ) -> None:
        settings = Settings(database_url=database_url)
        engine = worker_engine(database_url, settings)
        try:
            sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
            job_id = await _queue(sessions, recorder.registry, "test.record", worker_hint="async")
            assert await Worker(sessions, settings, registry=recorder.registry).drain() == 1
            assert recorder.runs == [(job_id, "async")]
            async with session_scope(sessions) as session:
                job = await session.get(Job, job_id)
                assert job is not None
                assert job.status == "done"
                await session.delete(job)
        finally:
            await engine.dispose()


class TestUpkeep:
    async def test_the_idempotency_purge_deletes_expired_records_only(
        self, committed_sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        async with session_scope(committed_sessions) as session:
            workspace, _ = await create_workspace(session, "upkeep")
            for key, hours in (("old", 49), ("fresh", 47)):
                session.add(
                    IdempotencyRecord(
                        workspace_id=workspace.id,
                        key=key,
                        fingerprint=b"\0" * 32,
                        status_code=201,
                        body=b"{}",
                        created_at=datetime.now(UTC) - timedelta(hours=hours),
                    )
                )
            await session.flush()
            await in_workspace(session, None)  # the periodic jobs are of no workspace
            await enqueue(session, "idempotency.purge")
        try:
            assert await Worker(committed_sessions, SETTINGS).drain() == 1
            async with committed_sessions() as session:
                await in_workspace(session, workspace.id)
                keys = await session.scalars(
                    select(IdempotencyRecord.key).where(
                        IdempotencyRecord.workspace_id == workspace.id
                    )
                )
                assert list(keys) == ["fresh"]
        finally:
            async with session_scope(committed_sessions) as session:
                await session.execute(delete(Workspace).where(Workspace.id == workspace.id))

    async def test_the_jobs_purge_deletes_finished_jobs_past_retention(
        self, committed_sessions: async_sessionmaker[AsyncSession]
    ) -> None:
        async with session_scope(committed_sessions) as session:
            await session.execute(
                text(
                    "INSERT INTO jobs (task, status, finished_at) VALUES "
                    "('gone', 'done', now() - interval '8 days'), "
                    "('kept', 'failed', now() - interval '6 days'), "
                    "('waiting', 'queued', NULL)"
                )
            )
            await session.execute(
                text("UPDATE jobs SET run_at = now() + interval '1 hour' WHERE task = 'waiting'")
            )
            await enqueue(session, "jobs.purge")

        assert await Worker(committed_sessions, SETTINGS).drain() == 1

        tasks = {j.task: j.status for j in await _jobs(committed_sessions)}
        assert tasks == {"kept": "failed", "waiting": "queued", "jobs.purge": "done"}
