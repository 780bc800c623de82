"""Database plumbing: the declarative base, engines, the unit of work, the request's session."""

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypedDict

import asyncpg
from fastapi import Depends, FastAPI, Request
from sqlalchemy import Connection, MetaData, event, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from starlette.types import Scope

from app.config import Settings
from app.errors import Busy, busy

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


CUSTOM_PLANS = "force_custom_plan"
_PLAN_EACH_QUERY = text(f"SET LOCAL plan_cache_mode = {CUSTOM_PLANS}")


# Client-side TCP keepalives and user timeout on every connection to a server over TCP: a server
# host that vanished (no RST: a crash, a partition) is noticed within about a minute, however
# long the statement or the idle time.
KEEPALIVE_IDLE_SECONDS = 30
KEEPALIVE_INTERVAL_SECONDS = 10
KEEPALIVE_PROBES = 3
TCP_USER_TIMEOUT_MS = 60_000


def _keepalive(dbapi_connection: Any, _: Any) -> None:
    transport = getattr(dbapi_connection.driver_connection, "_transport", None)
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket: the server is on this host
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_SECONDS),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_SECONDS),
        ("TCP_KEEPCNT", KEEPALIVE_PROBES),
        ("TCP_USER_TIMEOUT", TCP_USER_TIMEOUT_MS),
    ):
        if hasattr(socket, option):  # Linux has them all; macOS lacks some
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def create_engine(
    url: str,
    settings: Settings,
    *,
    application_name: str,
    generic_plans: bool = False,
    **kwargs: Any,
) -> AsyncEngine:
    """An engine whose connections name their process (`nps-api`, `nps-worker`, `nps-cli`), so
    pg_stat_activity tells them apart.

    `generic_plans`: prepared statements may run a cached generic plan, as PostgreSQL decides
    (the API's primary, where most statements find a row or two by key: planning each anew
    cost a quarter of the database's CPU per answer); its read sessions plan every query for
    its own parameters again (get_read_session). Otherwise every query is planned anew."""
    engine = create_async_engine(
        url,
        # Up to twice NPS_POOL_SIZE connections, each opened when concurrent requests first need
        # it and then kept: overflow connections (SQLAlchemy's max_overflow) are closed as soon
        # as they are returned, so a steady load above the pool size opened and closed a
        # connection (a backend, its authentication, the driver's type set-up) per request.
        pool_size=2 * settings.pool_size,
        max_overflow=0,
        # SQLAlchemy waits 30 s for a free connection by default: under overload every request
        # queued that long. A short wait, then a 503 /problems/busy (app.errors).
        pool_timeout=settings.pool_timeout_seconds,
        # No pre-ping: it costs a round trip per request. A connection lost to a server
        # restart fails one request with a 503 and SQLAlchemy then renews the whole pool.
        # Bounded waits: a stuck query or server becomes a 503, never a hung client.
        connect_args={
            "server_settings": {
                "application_name": application_name,
                "statement_timeout": str(settings.statement_timeout_ms),
                # Compiling a query plan to machine code costs 20-50 ms, more than these
                # index-driven queries take to run.
                "jit": "off",
                # Plan each query for its own window and workspace: a generic plan, which
                # PostgreSQL switches to after five runs of a prepared statement, cannot see
                # that one workspace holds most of the rows or how wide a window is.
                "plan_cache_mode": "auto" if generic_plans else CUSTOM_PLANS,
            },
            "timeout": 10,
            # The client's own bound on every statement, for a server that stopped answering
            # (frozen, or its host gone): statement_timeout cannot fire there.
            "command_timeout": settings.command_timeout_seconds,
        },
        **kwargs,
    )
    event.listen(engine.sync_engine, "connect", _keepalive)
    event.listen(engine.sync_engine, "do_connect", _connect)
    return engine


def _connect(dialect: Any, _: Any, cargs: Any, cparams: Any) -> Any:
    """The driver's connect, with a server's missing Unix socket (a local server stopped or
    restarting) raised as the refused connection it is: a 503 like any outage (app.errors),
    where the bare FileNotFoundError of the socket's path was a 500."""
    try:
        return dialect.loaded_dbapi.connect(*cargs, **cparams)
    except FileNotFoundError as exc:
        raise ConnectionRefusedError(f"the database's socket is missing: {exc}") from exc


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: a transaction committed when the block ends, rolled back if it raises.

    Requests (get_session), the CLI, the worker and tests all write through it.
    """
    async with sessionmaker() as session, session.begin():
        yield session


async def driver(session: AsyncSession) -> Any:
    """The asyncpg connection of the session's transaction, begun if it was not yet.

    For the statements of the hot paths (authentication, idempotency, recording an answer):
    a prepared statement run on the driver costs about a fifth of the CPU that the same
    statement costs through the session. They run in the session's transaction, so they commit
    or roll back with everything else; asyncpg errors reach the handlers in app.errors.
    """
    # One look-up per transaction: a request asks for it before each of its statements.
    transaction = session.get_transaction()
    cached = session.info.get(_DRIVER)
    if transaction is not None and cached is not None and cached[0] is transaction:
        return cached[1]
    connection = await session.connection()
    pooled = await connection.get_raw_connection()
    adapted = pooled.dbapi_connection
    # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement it runs itself;
    # it must be the one to begin, so that it commits or rolls back what the driver ran.
    if adapted is not None and adapted._transaction is None:
        async with adapted._execute_mutex:
            if adapted._transaction is None:
                try:
                    await adapted._start_transaction()
                except Exception as exc:
                    # The adapter raises its own translation of the driver's error, which no
                    # handler knows (a BEGIN cut off by a server stopping was a 500): the
                    # driver's own error is what the handlers map (a 503).
                    cause = _driver_error(exc)
                    if cause is exc:
                        raise
                    raise cause from None
    session.info[_DRIVER] = (session.get_transaction(), pooled.driver_connection)
    return pooled.driver_connection


_DRIVER = "app.db.driver"


def _driver_error(exc: Exception) -> Exception:
    """The asyncpg (or socket) error behind SQLAlchemy's adapter's translation of it, else
    `exc` itself."""
    cause = exc.__cause__
    if isinstance(cause, asyncpg.PostgresError | asyncpg.InterfaceError | OSError):
        return cause
    return exc


# Row-level security (migration 0014): the service's role sees and writes only the rows of the
# workspace its transaction names in this setting. Authentication names it in the statement that
# finds the caller (live_api_key, invitation_holder); the worker, the CLI and the periodic
# purges name it with in_workspace. It is transaction-local, so it never outlives the unit of
# work, and a pooled connection starts its next transaction in no workspace at all.
WORKSPACE_SETTING = "app.workspace_id"
SERVICE_ROLE = "nps_service"
_SET_WORKSPACE = f"SELECT set_config('{WORKSPACE_SETTING}', $1, true)"


async def in_workspace(session: AsyncSession, workspace_id: uuid.UUID | None) -> None:
    """Act in `workspace_id` for the rest of the session's transaction (None: in none, where
    only rows of no workspace, the periodic jobs, are visible)."""
    await (await driver(session)).execute(
        _SET_WORKSPACE, "" if workspace_id is None else str(workspace_id)
    )


async def unbound_role(session: AsyncSession) -> str | None:
    """The session's role when row-level security cannot bind it (a superuser, or a role with
    BYPASSRLS), else None."""
    name: str | None = await session.scalar(
        text(
            "SELECT rolname FROM pg_roles "
            "WHERE rolname = current_user AND (rolsuper OR rolbypassrls)"
        )
    )
    return name


async def each_workspace(session: AsyncSession) -> AsyncIterator[uuid.UUID]:
    """Every workspace in turn, the session's transaction acting in it while the loop's body
    runs: how work that spans workspaces (the purges, the CLI's listing) reaches their rows."""
    ids = (await (await driver(session)).fetch("SELECT id FROM workspaces ORDER BY id")) or []
    for row in ids:
        await in_workspace(session, row["id"])
        yield row["id"]
    await in_workspace(session, None)


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection on which each statement commits on its own: one round trip, no BEGIN or
    COMMIT. For a write that must stand whatever becomes of the request around it."""
    async with engine.connect() as connection:
        yield await connection.execution_options(isolation_level="AUTOCOMMIT")


class State(TypedDict):
    """What the API's lifespan yields; requests read it as `request.state`."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession] | None


# Request-state readers are coroutines: FastAPI runs a plain `def` dependency in its thread pool,
# a thread hop per dependency per request for a single attribute read.
async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.state.engine
    return engine


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    return sessionmaker


async def get_read_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession] | None:
    replica: async_sessionmaker[AsyncSession] | None = request.state.read_sessionmaker
    return replica


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]


def sessionmakers_of(
    app: FastAPI, scope: Scope
) -> tuple[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession] | None]:
    """The primary's and the replica's sessionmakers for code in front of the router (a pure
    ASGI middleware): what get_sessionmaker and get_read_sessionmaker give a route, the app's
    overrides of them included (tests set them, taking no parameters)."""
    overrides = app.dependency_overrides
    state = scope.get("state", {})  # no lifespan state when tests override both
    primary = overrides.get(get_sessionmaker)
    replica = overrides.get(get_read_sessionmaker)
    return (
        state["sessionmaker"] if primary is None else primary(),
        state["read_sessionmaker"] if replica is None else replica(),
    )


@asynccontextmanager
async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work on the primary: one transaction, committed when the block ends
    (get_session, and the idempotent POSTs' one dependency, app.api.idempotency).

    Its sessionmaker is get_sessionmaker's, read here rather than as a sub-dependency: every
    route takes a session, and the framework walks each dependency of each request again."""
    primary, _ = sessionmakers_of(request.app, request.scope)
    async with session_scope(primary) as session:
        yield session


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request is the unit of work: one transaction, committed before the response is
    sent."""
    async with request_session(request) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


class ReadSlots:
    """How many read requests a web process serves at once (NPS_READ_CONCURRENCY), so that
    slow reports can take at most that share of its connections and writes keep the rest.

    A read waits for a turn before its first statement (so a waiting read holds no connection)
    and keeps it until its session ends; a read that gets no turn within NPS_POOL_TIMEOUT_SECONDS
    is a 503 /problems/busy, and so, at once, is a read that finds `queue` reads already waiting
    (NPS_READ_QUEUE): app.middleware.ReadShedding answers it at the door, before the
    framework does any of its work. Under 300 concurrent heavy reads the framework's path of
    the refused reads' 503s had been about a third of the event loop's time."""

    def __init__(self, slots: int, wait_seconds: float, queue: int | None = None) -> None:
        self.slots = slots
        self.wait_seconds = wait_seconds
        self.queue = queue
        self.waiting = 0
        self._free = asyncio.Semaphore(slots)

    @property
    def in_use(self) -> int:
        return self.slots - self._free._value

    @property
    def full(self) -> bool:
        """Every turn taken and as many reads waiting as may wait: the next one is refused."""
        return self.queue is not None and self._free.locked() and self.waiting >= self.queue

    def refusal(self) -> Busy:
        n = self.slots
        taken = "the read slot is" if n == 1 else f"all {n} read slots are"
        if self.full:
            queued = "1 read is" if self.waiting == 1 else f"{self.waiting} reads are"
            return busy(f"{taken} in use and {queued} waiting")
        return busy(f"{taken} in use")

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._free.locked():
            if self.full:
                raise self.refusal()
            self.waiting += 1
            try:
                async with asyncio.timeout(self.wait_seconds):
                    await self._free.acquire()
            except TimeoutError:
                raise self.refusal() from None
            finally:
                self.waiting -= 1
        else:  # a free slot: taken without waiting (acquire does not yield then)
            await self._free.acquire()
        try:
            yield
        finally:
            self._free.release()


def read_slots_for(settings: Settings) -> ReadSlots:
    return ReadSlots(settings.read_slots, settings.pool_timeout_seconds, settings.read_queue)


async def get_read_slots(request: Request) -> ReadSlots:
    slots: ReadSlots = request.app.state.read_slots
    return slots


async def get_read_session(
    slots: Annotated[ReadSlots, Depends(get_read_slots)],
    replica: Annotated[async_sessionmaker[AsyncSession] | None, Depends(get_read_sessionmaker)],
    primary: SessionDep,
) -> AsyncIterator[AsyncSession]:
    """A session on the read replica when one is configured, else the request's own session,
    planning each query for its own parameters (the primary's engine allows generic plans).

    Resolved before anything that runs a statement (a route declares it before its auth), so
    the read's turn is taken before the request holds a connection (ReadSlots)."""
    async with slots.turn(), _reading(replica, primary, plan_each_query=True) as session:
        yield session


async def get_lookup_session(
    replica: Annotated[async_sessionmaker[AsyncSession] | None, Depends(get_read_sessionmaker)],
    primary: SessionDep,
) -> AsyncIterator[AsyncSession]:
    """The session of a lookup, a read of one resource by its key (an account, a response, an
    import's progress): on the read replica when one is configured, as every read, but without
    a read turn. It finds a row or a few by key in a millisecond, so it cannot crowd the writes
    out as a report can; taking turns behind the reports made 32 clients reading stakeholders
    by id get 503 /problems/busy for 96 of every 100 calls with the default single turn. On
    the primary it keeps the engine's generic plans, made for exactly such statements."""
    async with _reading(replica, primary, plan_each_query=False) as session:
        yield session


@asynccontextmanager
async def _reading(
    replica: async_sessionmaker[AsyncSession] | None,
    primary: AsyncSession,
    *,
    plan_each_query: bool,
) -> AsyncIterator[AsyncSession]:
    """The session a read runs on: the replica's when one is configured, else the request's
    own (planning each query for its own parameters when `plan_each_query`)."""
    if replica is None:
        if plan_each_query:
            await primary.execute(_PLAN_EACH_QUERY)
        yield primary
        return
    async with session_scope(replica) as session:
        # Authentication names the workspace in the primary's transaction, and runs after
        # this dependency; the replica's transaction begins with the endpoint's first read.
        def name_workspace(_: Any, __: Any, connection: Connection) -> None:
            workspace = primary.info.get(AUTHENTICATED_WORKSPACE)
            connection.execute(
                text(f"SELECT set_config('{WORKSPACE_SETTING}', :id, true)"),
                {"id": "" if workspace is None else str(workspace)},
            )

        event.listen(session.sync_session, "after_begin", name_workspace)
        yield session


# Where authentication leaves the caller's workspace on the request's session.
AUTHENTICATED_WORKSPACE = "app.db.workspace"


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
LookupSessionDep = Annotated[AsyncSession, Depends(get_lookup_session, scope="function")]
