"""Starting without a database: `nps serve` serves at once and finishes its bootstrap
(migrations in development, the default workspace and bootstrap key) when the database comes.

The bootstrap is retried with backoff in a thread of the `nps serve` process itself, beside the
web server it supervises, never in a web process's request path. Each web process answers
every call but the probes with a 503 until it has once seen the database answer with its schema
at the code's head (SchemaGate); from then on it serves, and a later outage is the error
handlers' 503 as before.
"""

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import ProblemError, ServiceUnavailable, problem_response
from app.migrate import head_revision
from app.services.keys import key_hashes

# What a database that is down, starting, or not yet migrated raises: retried, not fatal.
DATABASE_NOT_READY = (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError)
FIRST_RETRY_SECONDS = 0.5
LONGEST_RETRY_SECONDS = 5.0


def first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


@contextmanager
def retried_in_background(attempt: Callable[[], None]) -> Iterator[threading.Event]:
    """Run `attempt` in a thread until it succeeds, waiting twice as long after each failure
    (up to LONGEST_RETRY_SECONDS); yields an event set once it has. An error that is not the
    database's ends the retries (and is printed): retrying would not help."""
    done, stop = threading.Event(), threading.Event()

    def run() -> None:
        wait = FIRST_RETRY_SECONDS
        while not stop.wait(wait):
            try:
                attempt()
            except DATABASE_NOT_READY as exc:
                _say(f"the database is not ready yet ({first_line(exc)}); retrying in {wait:g} s")
                wait = min(2 * wait, LONGEST_RETRY_SECONDS)
                continue
            except Exception as exc:
                _say(f"error: the bootstrap failed and is not retried: {exc!r}")
                return
            _say("the database is ready: bootstrap finished")
            done.set()
            return

    thread = threading.Thread(target=run, name="nps-bootstrap", daemon=True)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join(timeout=LONGEST_RETRY_SECONDS + 30)


def _say(line: str) -> None:
    # Beside `nps serve`'s own lines on stderr (uvicorn's log may be JSON; these are the CLI's).
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


# The probe and the gate answer within a second whatever the database does: a check that takes
# longer goes on in the background (bounded by the driver's command_timeout) meanwhile.
READY_WITHIN_SECONDS = 0.8
_checks: set[asyncio.Task[Any]] = set()
UNDEFINED_TABLE = "42P01"


async def _schema_revision(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        try:
            return await conn.scalar(text("SELECT version_num FROM alembic_version"))
        except ProgrammingError as exc:
            if getattr(exc.orig, "sqlstate", None) == UNDEFINED_TABLE:
                return None  # a database nothing has migrated yet
            raise


async def _key_stored(engine: AsyncEngine, raw: str) -> bool:
    """Whether the API key `raw` is stored, in any workspace (api_key_workspace looks past
    row-level security)."""
    async with engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT api_key_workspace(NULL, :hashes)"), {"hashes": key_hashes(raw)}
        )
        return found is not None


def _forget(check: asyncio.Task[Any]) -> None:
    _checks.discard(check)
    if not check.cancelled():
        check.exception()  # retrieved: a late failure is no news once the probe has answered


async def schema_problem(
    engine: AsyncEngine, within: float = READY_WITHIN_SECONDS
) -> ProblemError | None:
    """Why the database cannot serve this code (unreachable, slow, not migrated to head), or
    None when it can; within `within` seconds (the readiness probe's READY_WITHIN_SECONDS)."""
    head = head_revision()
    # Not cancelled when the probe gives up: cancelling a statement in flight waits for the
    # server to acknowledge, which a frozen server never does.
    check = asyncio.create_task(_schema_revision(engine))
    _checks.add(check)
    check.add_done_callback(_forget)
    try:
        current = await asyncio.wait_for(asyncio.shield(check), within)
    except TimeoutError:
        return ServiceUnavailable(
            f"the database did not answer within {within:g} s",
            headers={"Retry-After": "5"},
        )
    except Exception:  # any failure to reach or read the database means "not ready"
        return ServiceUnavailable("the database is unreachable", headers={"Retry-After": "5"})
    if current is None:
        return ServiceUnavailable(
            "the database has no schema yet: bootstrap pending (in production: `nps migrate`)",
            headers={"Retry-After": "5"},
        )
    if current != head:
        return ServiceUnavailable(
            f"the database schema is at {current!r}, the code expects {head!r}: run `nps migrate`",
            headers={"Retry-After": "30"},
        )
    return None


BOOTSTRAP_PENDING = "the service is starting: the bootstrap admin key is not stored yet"


async def bootstrap_problem(
    engine: AsyncEngine, bootstrap_key: str | None, within: float
) -> ProblemError | None:
    """schema_problem, and, with NPS_BOOTSTRAP_API_KEY set, a 503 until that key is stored:
    `nps serve` stores it once the database comes (the bootstrap), and until then a call made
    with it would be a 401, an answer a client does not retry."""
    problem = await schema_problem(engine, within)
    if problem is not None or bootstrap_key is None:
        return problem
    try:
        stored = await asyncio.wait_for(_key_stored(engine, bootstrap_key), within)
    except Exception:
        return ServiceUnavailable("the database is unreachable", headers={"Retry-After": "5"})
    if not stored:
        return ServiceUnavailable(BOOTSTRAP_PENDING, headers={"Retry-After": "1"})
    return None


# Answered whatever the database does: liveness, readiness (which checks for itself), metrics.
UNGATED = frozenset({"/healthz", "/readyz", "/metrics"})
RECHECK_SECONDS = 1.0
# How long the gate's check may take before the requests waiting for it are told the database
# did not answer. Longer than the readiness probe's bound: a process started under load has a
# busy event loop, and a trivial query answered late is no outage; the requests that arrive
# meanwhile wait for that one check instead of being turned away.
GATE_WAIT_SECONDS = 5.0


class SchemaGate:
    """Until this process has seen the database answer with its schema at head, every request
    but UNGATED is answered 503 problem+json with Retry-After (not a 500 from a missing table,
    not a hang), and, with NPS_BOOTSTRAP_API_KEY set, until that key is stored (no 401 for the
    key a deployment was started with while the bootstrap finishes); then it opens for the
    process's life. One check at a time, awaited by every
    request that arrives while it runs (within GATE_WAIT_SECONDS); a check that found a problem
    answers for RECHECK_SECONDS, then the next request starts another. The engine is the
    lifespan's (scope["state"])."""

    def __init__(self, app: ASGIApp, bootstrap_key: str | None = None) -> None:
        self.app = app
        self.bootstrap_key = bootstrap_key
        self.open = False
        self.checked_at = float("-inf")
        self._check: asyncio.Future[ProblemError | None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.open or scope["type"] != "http" or scope["path"] in UNGATED:
            await self.app(scope, receive, send)
            return
        problem = await self._problem(scope)
        if problem is None:
            self.open = True
            await self.app(scope, receive, send)
            return
        await problem_response(problem)(scope, receive, send)

    async def _problem(self, scope: Scope) -> ProblemError | None:
        loop = asyncio.get_running_loop()
        check = self._check
        if check is None or (check.done() and loop.time() - self.checked_at >= RECHECK_SECONDS):
            self.checked_at = loop.time()
            check = self._check = asyncio.ensure_future(
                bootstrap_problem(scope["state"]["engine"], self.bootstrap_key, GATE_WAIT_SECONDS)
            )
        # Shielded: a client that goes away does not cancel the check the others wait for.
        return await asyncio.shield(check)
