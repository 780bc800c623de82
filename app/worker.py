"""The worker: claims jobs from PostgreSQL with FOR UPDATE SKIP LOCKED and runs them.

`nps worker` runs one in its own process; `nps serve` runs one in a thread of its own unless
NPS_WORKER=off. Any number can run at once: a job is claimed by exactly one of them, and a
periodic task is queued once per period (app.jobs). Each runs up to NPS_WORKER_CONCURRENCY jobs at
once. On SIGTERM or SIGINT a worker finishes the jobs in hand and exits; a worker that dies
instead leaves its jobs to be claimed again once their leases run out.
"""

import asyncio
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_sessionmaker, in_workspace, session_scope
from app.jobs import TASKS, JobContext, Registry, Task, enqueue
from app.models import Job, JobStatus
from app.tasks import MODULES as TASK_MODULES  # noqa: F401 - declares every task to run

logger = logging.getLogger("app.worker")

WORKER_APPLICATION_NAME = "nps-worker"
# Set on each connection of a worker's engine (worker_engine says why).
WORKER_SESSION = "SET synchronous_commit TO off; SET enable_bitmapscan TO off"
MAX_ERROR_LENGTH = 2000

# claim_job (migration 0013) takes the next due job of whichever workspace (FOR UPDATE SKIP
# LOCKED), past row-level security; the job then runs acting in its own workspace. Only tasks
# this worker's code declares: during a rolling deploy an older worker leaves a newer task's
# jobs to the workers that know it.
_CLAIM = text(
    "SELECT id, task, payload, workspace_id, attempts, max_attempts, lease_seconds "
    "FROM claim_job(:worker, CAST(:known AS text[]))"
)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    task: str
    payload: dict[str, Any]
    workspace_id: uuid.UUID | None
    attempts: int
    max_attempts: int
    lease_seconds: int


class LeaseLost(Exception):
    """Another worker claimed the job meanwhile (this one held it past its lease)."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """One worker over a sessionmaker. `run_once` is one step; `run` loops until stopped."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        registry: Registry = TASKS,
        name: str | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.registry = registry
        self.name = name or worker_name()
        # When the next period of any periodic task starts: until then there is nothing new to
        # queue, so an idle worker's poll costs one claim, not a transaction of inserts too.
        self._next_period: datetime | None = None

    async def schedule_periodic(self) -> int:
        """Queue each periodic task's job for the current period, unless queued already."""
        periodic = self.registry.periodic()
        if not periodic or (
            self._next_period is not None and datetime.now(UTC) < self._next_period
        ):
            return 0
        queued = 0
        async with session_scope(self.sessionmaker) as session:
            now = await _now(session)  # the database's clock decides the period, for all workers
            for declared in periodic:
                slot = declared.slot(now)
                job_id = await enqueue(
                    session,
                    declared.name,
                    run_at=slot,
                    dedupe_key=f"{declared.name}@{slot.isoformat()}",
                    registry=self.registry,
                )
                queued += job_id is not None
        self._next_period = min(d.slot(now) + d.every for d in periodic if d.every is not None)
        return queued

    async def claim(self) -> Claimed | None:
        async with session_scope(self.sessionmaker) as session:
            known = sorted(self.registry.tasks)
            row = (await session.execute(_CLAIM, {"worker": self.name, "known": known})).first()
        if row is None:
            return None
        return Claimed(
            row.id,
            row.task,
            dict(row.payload),
            row.workspace_id,
            row.attempts,
            row.max_attempts,
            row.lease_seconds,
        )

    async def run_once(self) -> bool:
        """Claim one due job and run it; False when there was none."""
        job = await self.claim()
        if job is None:
            return False
        declared = self.registry.tasks[job.task]
        if job.attempts > job.max_attempts:
            # Its lease ran out on the last attempt: the worker running it died.
            await self._finish(job, JobStatus.FAILED, error="the worker running it stopped")
            return True
        heartbeat = asyncio.create_task(self._keep_lease(job))
        try:
            async with session_scope(self.sessionmaker) as session:
                await in_workspace(session, job.workspace_id)
                await declared.handler(
                    JobContext(
                        session=session,
                        settings=self.settings,
                        job_id=job.id,
                        workspace_id=job.workspace_id,
                        payload=job.payload,
                        attempt=job.attempts,
                        sessionmaker=self.sessionmaker,
                    )
                )
                if not await _mark(session, job, self.name, status=JobStatus.DONE):
                    raise LeaseLost  # roll the work back: the job's new owner does it
        except LeaseLost:
            logger.warning("job %s (%s) was taken over by another worker", job.id, job.task)
        except Exception as exc:
            logger.exception("job %s (%s) failed on attempt %d", job.id, job.task, job.attempts)
            await self._failed(job, declared, exc)
        finally:
            heartbeat.cancel()
            with suppress(asyncio.CancelledError):
                await heartbeat
        return True

    async def _keep_lease(self, job: Claimed) -> None:
        """Renew the job's lease every third of it while it runs, so a long job is not taken
        for dead; a renewal that fails (the database is away) is tried again next time."""
        every = job.lease_seconds / 3
        while True:
            await asyncio.sleep(every)
            try:
                async with session_scope(self.sessionmaker) as session:
                    await in_workspace(session, job.workspace_id)
                    await session.execute(
                        update(Job)
                        .where(Job.id == job.id, Job.locked_by == self.name)
                        .values(locked_until=func.now() + timedelta(seconds=job.lease_seconds))
                    )
            except Exception:
                logger.warning("could not renew the lease of job %s", job.id, exc_info=True)

    async def drain(self) -> int:
        """Run due jobs until there are none; how many ran."""
        ran = 0
        while await self.run_once():
            ran += 1
        return ran

    async def run(
        self,
        stop: asyncio.Event,
        *,
        poll_seconds: float | None = None,
        concurrency: int | None = None,
    ) -> None:
        """Queue periodic jobs and run due ones, `concurrency` (NPS_WORKER_CONCURRENCY) at once,
        until `stop` is set; then finish the jobs in hand and return."""
        interval = self.settings.worker_poll_seconds if poll_seconds is None else poll_seconds
        slots = self.settings.worker_concurrency if concurrency is None else concurrency
        logger.info("worker %s started (%d at once)", self.name, slots)
        # Each slot claims and runs one job after another, as a worker of its own would (SKIP
        # LOCKED keeps them apart); one of them also queues the periodic jobs.
        await asyncio.gather(*(self._slot(stop, interval, periodic=n == 0) for n in range(slots)))
        logger.info("worker %s stopped", self.name)

    async def _slot(self, stop: asyncio.Event, interval: float, *, periodic: bool) -> None:
        while not stop.is_set():
            try:
                if periodic:
                    await self.schedule_periodic()
                while not stop.is_set() and await self.run_once():
                    pass
            except Exception:  # the database went away: keep trying, do not die
                logger.exception("worker %s could not reach the queue; retrying", self.name)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def _failed(self, job: Claimed, declared: Task, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
        if job.attempts >= job.max_attempts:
            await self._finish(job, JobStatus.FAILED, error=error)
            return
        async with session_scope(self.sessionmaker) as session:
            await in_workspace(session, job.workspace_id)
            await _mark(
                session,
                job,
                self.name,
                status=JobStatus.QUEUED,
                error=error,
                run_at=await _now(session) + declared.retry_delay(job.attempts),
            )

    async def _finish(self, job: Claimed, status: JobStatus, *, error: str) -> None:
        async with session_scope(self.sessionmaker) as session:
            await in_workspace(session, job.workspace_id)
            await _mark(session, job, self.name, status=status, error=error)


async def _now(session: AsyncSession) -> datetime:
    now: datetime = await session.scalar(text("SELECT now()"))
    return now


async def _mark(
    session: AsyncSession,
    job: Claimed,
    worker: str,
    *,
    status: JobStatus,
    error: str | None = None,
    run_at: datetime | None = None,
) -> bool:
    """Record a job's outcome, unless another worker has claimed it since (its lease ran out):
    whether it was recorded."""
    values: dict[str, Any] = {"status": status.value, "locked_by": None, "locked_until": None}
    if status in (JobStatus.DONE, JobStatus.FAILED):
        values["finished_at"] = func.now()
    if error is not None or status is JobStatus.DONE:
        values["last_error"] = error
    if run_at is not None:
        values["run_at"] = run_at
    result = await session.execute(
        update(Job).where(Job.id == job.id, Job.locked_by == worker).values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def worker_engine(database_url: str, settings: Settings) -> AsyncEngine:
    """The worker's engine: its transactions commit without waiting for the WAL flush, and its
    prepared statements may run PostgreSQL's generic plans.

    A worker commits twice per job (the claim, then the work with its `done`), and waiting for
    the disk on each held a delivery to the speed of fsync. Losing the last moments of a worker's
    commits to a server crash is safe: a transaction is lost whole, with its job's claim or
    `done`, so the job is simply run again, as after a worker's own death (jobs run at least
    once). What the API commits (answers and the events they emit) still waits for the disk.
    Its statements find rows by key, where planning each anew cost about a quarter of the
    database's CPU per delivery (as on the API's primary, app.db.create_engine).

    A claim must walk ix_jobs_claimable in order and stop at the first free job. The statistics
    of a queue table are always behind (taken when it held a few due jobs, then a backlog
    arrives), and on them PostgreSQL chose a bitmap scan that reads every due job and sorts them
    all for each claim: 10,000 pending events cost the database ~13 ms per delivery, growing
    with the backlog. Bitmap scans are off for the worker (its other statements are found by
    key or by one range), so the index is read in order whatever the statistics say."""
    engine = create_engine(
        database_url, settings, application_name=WORKER_APPLICATION_NAME, generic_plans=True
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _worker_session(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.run_async(lambda conn: conn.execute(WORKER_SESSION))

    return engine


async def run_worker(database_url: str, settings: Settings, stop: asyncio.Event) -> None:
    """A worker on its own engine until `stop` is set."""
    engine = worker_engine(database_url, settings)
    try:
        await Worker(create_sessionmaker(engine), settings).run(stop)
    finally:
        await engine.dispose()


def run_until_signalled(database_url: str, settings: Settings) -> None:
    """`nps worker`: run in this process's main thread until SIGTERM or SIGINT."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_worker(database_url, settings, stop)

    asyncio.run(main())


@contextmanager
def worker_thread(database_url: str, settings: Settings) -> Iterator[None]:
    """A worker in a thread of its own (with its own event loop) while the block runs: how
    `nps serve` keeps one worker beside the web server on a single machine."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def target() -> None:
        try:
            loop.run_until_complete(run_worker(database_url, settings, stop))
        except Exception:  # pragma: no cover - the loop itself survives database outages
            logger.exception("the in-process worker stopped; background jobs wait for another")
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=target, name=WORKER_APPLICATION_NAME, daemon=True)
    thread.start()
    try:
        yield
    finally:
        if not loop.is_closed():
            with suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)
