"""Background jobs: tasks declared beside their code, and queued in the caller's transaction.

A service queues work with `enqueue(session, "task.name", payload)` and never commits: the job
row commits or vanishes with the change that needs it (a transactional outbox). A task is an
async function declared with `@task(...)`; `every=` makes it periodic, and one job per period is
queued whichever and however many workers are running. app.worker claims and runs them.

Jobs run at least once: a worker that dies mid-job loses its lease and another runs the job
again, so a task must be safe to repeat (or check, in its own transaction, that it already ran).
"""

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import each_workspace
from app.models import Job, JobStatus


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a task runs with: its own transaction, the process's settings, and the job."""

    session: AsyncSession
    settings: Settings
    job_id: int
    workspace_id: uuid.UUID | None
    payload: Mapping[str, Any]
    attempt: int
    # The worker's sessions, for a long task that commits in steps of its own (an import):
    # each step a unit of work of its own, beside the job's transaction.
    sessionmaker: async_sessionmaker[AsyncSession] | None = None


Handler = Callable[[JobContext], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Task:
    name: str
    handler: Handler
    every: timedelta | None = None
    max_attempts: int = 5
    # A worker holds a job this long; past it, the job is taken to have died with its worker.
    lease: timedelta = timedelta(minutes=5)
    # Retries wait base * 2 ** (attempt - 1), capped.
    backoff: timedelta = timedelta(seconds=10)
    max_backoff: timedelta = timedelta(hours=1)

    def retry_delay(self, attempt: int) -> timedelta:
        return min(self.backoff * (1 << max(attempt - 1, 0)), self.max_backoff)

    def slot(self, now: datetime) -> datetime:
        """The start of the period `now` is in (periods counted from the Unix epoch)."""
        assert self.every is not None
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        return epoch + self.every * ((now - epoch) // self.every)


@dataclass
class Registry:
    tasks: dict[str, Task] = field(default_factory=dict)

    def task(
        self,
        name: str,
        *,
        every: timedelta | None = None,
        max_attempts: int = 5,
        lease: timedelta = timedelta(minutes=5),
        backoff: timedelta = timedelta(seconds=10),
        max_backoff: timedelta = timedelta(hours=1),
    ) -> Callable[[Handler], Handler]:
        """Declare `handler` as the task `name` (periodic with `every`)."""

        def register(handler: Handler) -> Handler:
            if name in self.tasks:
                raise ValueError(f"task {name!r} is declared twice")
            self.tasks[name] = Task(name, handler, every, max_attempts, lease, backoff, max_backoff)
            return handler

        return register

    def periodic(self) -> list[Task]:
        return [t for t in self.tasks.values() if t.every is not None]


# The service's tasks; the modules that declare them are listed in app.worker.
TASKS = Registry()
task = TASKS.task


async def enqueue(
    session: AsyncSession,
    name: str,
    payload: Mapping[str, Any] | None = None,
    *,
    workspace_id: uuid.UUID | None = None,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    registry: Registry = TASKS,
) -> int | None:
    """Queue a job in the session's transaction; its id, or None when `dedupe_key` is queued
    already. Never commits."""
    declared = registry.tasks.get(name)
    if declared is None:
        raise ValueError(f"no task {name!r} is declared")
    values: dict[str, Any] = {
        "task": name,
        "payload": dict(payload or {}),
        "workspace_id": workspace_id,
        "dedupe_key": dedupe_key,
        "max_attempts": declared.max_attempts,
        "lease_seconds": max(1, int(declared.lease.total_seconds())),
    }
    if run_at is not None:
        values["run_at"] = run_at
    statement = insert(Job).values(**values)
    if dedupe_key is not None:
        statement = statement.on_conflict_do_nothing(index_elements=[Job.dedupe_key])
    job_id: int | None = await session.scalar(statement.returning(Job.id))
    return job_id


@task("jobs.purge", every=timedelta(hours=1))
async def purge_finished_jobs(ctx: JobContext) -> None:
    """Finished jobs are kept NPS_JOB_RETENTION_DAYS for inspection, then deleted: each
    workspace's, then the periodic ones (of no workspace)."""
    cutoff = func.now() - timedelta(days=ctx.settings.job_retention_days)
    finished = Job.status.in_([JobStatus.DONE.value, JobStatus.FAILED.value])
    async for workspace_id in each_workspace(ctx.session):
        await ctx.session.execute(
            delete(Job).where(Job.workspace_id == workspace_id, finished, Job.finished_at < cutoff)
        )
    await ctx.session.execute(
        delete(Job).where(Job.workspace_id.is_(None), finished, Job.finished_at < cutoff)
    )
