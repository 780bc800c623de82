"""Idempotency-Key on POST: a retry returns the stored result instead of doing the work twice.

The record is written in the same transaction as the work, so they commit or vanish together.
A transaction-scoped advisory lock on (workspace, key) makes a concurrent duplicate a 409
instead of a second execution; once the first commits, a retry finds its record and replays it.

On the answer paths, which are tuned to a handful of round trips, neither costs one of its own:
the lock and the look-up of the record ride on the statement that looks the caller up (`Probe`,
app.services.lookups), and a new answer's record is written by the statement that stores the
answer (`Idempotency.kept_with_answer`, a companion of response_rows.store_one).
"""

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Generic, NoReturn

from fastapi import Depends, FastAPI, Header, Request
from fastapi import Response as HttpResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.auth import (
    ApiKeySubject,
    Credentials,
    InvitationSubject,
    S,
    Subject,
    admission,
    live,
    subject_of,
)
from app.api.deps import utcnow
from app.bodies import parsed_body
from app.canonical import canonical_json
from app.config import Settings
from app.db import driver, request_session
from app.errors import (
    PROBLEM_JSON,
    Conflict,
    Gone,
    IdempotencyMismatch,
    ProblemError,
    Unprocessable,
    field_error,
)
from app.models import Scope
from app.services.lookups import Rider
from app.services.response_rows import Companion, CompanionRefused

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
REPLAYED_HEADER: dict[str, Any] = {  # how OpenAPI declares it on every idempotent operation
    "description": f"`true` when this is the stored answer to an earlier request with the same "
    f"{HEADER} and body (nothing was done again); absent otherwise",
    "schema": {"type": "string", "enum": ["true"]},
}


class Replay(Exception):
    """Carries the stored answer out; plain values, since the session is rolled back on the way."""

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body


def _fingerprint(request: Request, body: bytes) -> bytes:
    # The route parsed a JSON body already (app.bodies): canonicalise that value, never a
    # second parse of the same bytes on the answer path.
    parsed, value = parsed_body(request)
    if parsed:
        canonical = canonical_json(value).encode()
    else:  # a route without a JSON body model
        try:
            canonical = canonical_json(json.loads(body)).encode()
        except (ValueError, RecursionError):
            canonical = body
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
    digest.update(canonical)
    return digest.digest()


# On the driver (app.db.driver): every POST with a key runs these. The lock and the look-up
# share a round trip. The look-up reads with the statement's snapshot, taken before the lock:
# should the request holding the key commit in between, this one gets the lock without seeing
# its record and does the work again; then it cannot store its own record (the key is the
# primary key), so it replays the stored one instead and rolls back whole: nothing is ever
# done twice.
_FIND = """
    SELECT pg_try_advisory_xact_lock(hashtextextended($3, 0)) AS locked,
           r.fingerprint, r.status_code, r.body, r.reread, r.resource_id, r.created_at
    FROM (SELECT 1) AS one
    LEFT JOIN idempotency_keys AS r ON r.workspace_id = $1 AND r.key = $2
"""
# The same, riding on the caller's look-up (app.services.lookups): its workspace, and where the
# caller's kind keeps the key (Subject.idempotency_sql), come from the look-up's row `k`. One
# round trip fewer for every idempotent POST; the same snapshot, taken before the lock.
_PROBE_COLUMNS = (
    "locked",
    "fingerprint",
    "status_code",
    "body",
    "reread",
    "resource_id",
    "created_at",
)


def _probe_sql(kept_as: str) -> Callable[[int], str]:
    # The key is worked out in a subquery of its own, and the record read by a LATERAL one of
    # that (OFFSET 0 keeps each a subquery): compared in a join's condition, the expression
    # kept the primary key's index to its workspace column, and the plan read every key of the
    # workspace (7 ms a call after 20,000 answers); joined, the plan depended on the table's
    # statistics.
    def sql(first: int) -> str:
        stored = kept_as.format(key=f"${first}::text")
        return f"""
    LEFT JOIN LATERAL (
        SELECT pg_try_advisory_xact_lock(
                   hashtextextended(k.workspace_id::text || ':' || s.stored, 0)) AS locked,
               r.fingerprint, r.status_code, r.body, r.reread, r.resource_id, r.created_at
        FROM (SELECT ({stored})::varchar AS stored OFFSET 0) AS s
        LEFT JOIN LATERAL (
            SELECT * FROM idempotency_keys AS r
            WHERE r.workspace_id = k.workspace_id AND r.key = s.stored
            OFFSET 0
        ) AS r ON true
        WHERE k.id IS NOT NULL
    ) AS idem ON true"""

    return sql


_PROBES = {kind: _probe_sql(kind.idempotency_sql) for kind in (ApiKeySubject, InvitationSubject)}
_PROBE_SELECT = ", ".join(f"idem.{name} AS idem_{name}" for name in _PROBE_COLUMNS)


class Probe:
    """An Idempotency-Key's lock and record, looked for by the caller's look-up."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.rider: Rider | None = None

    def riders(self, kind: type[Subject]) -> Rider:
        self.rider = Rider(
            f"idempotency:{kind.__name__}", _PROBES[kind], _PROBE_SELECT, (self.key,)
        )
        return self.rider

    def record(self) -> dict[str, Any] | None:
        """What _FIND answers, as the look-up found it; None when it did not run with it."""
        row = None if self.rider is None else self.rider.row
        if row is None:
            return None
        return {name: row[f"idem_{name}"] for name in _PROBE_COLUMNS}


# Only when the key's lock is held by another request, or the record could not be stored: a
# new statement, so a new snapshot, sees a record committed since.
_LOOK = """
    SELECT fingerprint, status_code, body, reread, resource_id, created_at
    FROM idempotency_keys WHERE workspace_id = $1 AND key = $2
"""
_FORGET = "DELETE FROM idempotency_keys WHERE workspace_id = $1 AND key = $2"
_KEEP = (
    "INSERT INTO idempotency_keys "
    "(workspace_id, key, fingerprint, status_code, body, reread, resource_id) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
)

# The same, as a companion of the statement that stores an answer (Idempotency.kept_with_answer):
# the resource is the stored answer unless named.
KEEP = "idempotency-key"


def _keep_sql(first: int) -> str:
    key, fingerprint, status, reread, resource = (f"${first + i}" for i in range(5))
    return f"""
        INSERT INTO idempotency_keys
            (workspace_id, key, fingerprint, status_code, body, reread, resource_id)
        SELECT $1, {key}::text, {fingerprint}::bytea, {status}::int, NULL, {reread}::text,
               COALESCE({resource}::text, stored.id::text)
        FROM stored
        ON CONFLICT DO NOTHING
        RETURNING 1"""


# How a replay shows again an answer that showed personal data, instead of a stored copy:
# given the workspace and the id the answer named, the resource as it is now, or None when it
# is gone (erased), which replays as a 410. Routers register theirs with `rereads`.
Reader = Callable[[AsyncSession, uuid.UUID, str], Awaitable[BaseModel | None]]
_READERS: dict[str, Reader] = {}


def rereads(name: str) -> Callable[[Reader], Reader]:
    """Register `name`'s reader: `respond(..., reread=(name, id))` stores only the id."""

    def register(read: Reader) -> Reader:
        if _READERS.setdefault(name, read) is not read:
            raise ValueError(f"a reader named {name!r} is registered already")
        return read

    return register


class Idempotency:
    def __init__(self, workspace_id: uuid.UUID, key: str | None, fingerprint: bytes) -> None:
        self.workspace_id = workspace_id
        self.key = key
        self.fingerprint = fingerprint
        # What a retry will be answered: a status and a body, or a reader and an id.
        self.stored: tuple[int, bytes | None, str | None, str | None] | None = None
        # What the answer's own statement kept already (kept_with_answer).
        self.kept: tuple[int, str, str | None] | None = None

    def kept_with_answer(
        self, status_code: int, reread: str, resource_id: object | None = None
    ) -> Companion | None:
        """The record a retry will find, written by the statement that stores an answer
        (response_rows.store_one) rather than after it: what `respond` will be given when the
        answer is stored, `status_code` and `reread` with `resource_id` (None: the stored
        answer's id). None without a key. When the record turns out to be there already (a
        request with the key committed since the look-up), the statement raises
        CompanionRefused(KEEP), which the dependency turns into the replay."""
        if self.key is None:
            return None
        if reread not in _READERS:
            raise ValueError(f"no reader named {reread!r}")
        promised = (status_code, reread, None if resource_id is None else str(resource_id))

        def done() -> None:
            self.kept = promised

        args = (self.key, self.fingerprint, status_code, reread, promised[2])
        return Companion(KEEP, _keep_sql, args, done)

    def respond(
        self,
        content: BaseModel,
        status_code: int,
        *,
        replay_as: ProblemError | None = None,
        reread: tuple[str, object] | None = None,
    ) -> HttpResponse:
        """The answer, stored for retries under the key: as given, as `replay_as` when it holds
        a secret, or, when it shows personal data, as `reread` (a reader registered with
        `rereads` and the id it reads), so that no copy outlives an erasure."""
        body = content.model_dump_json(by_alias=True).encode()
        if self.kept is not None:
            name, resource_id = reread if reread is not None else (None, None)
            status, kept_name, kept_id = self.kept
            if (status, kept_name) != (status_code, name) or kept_id not in (
                None,
                str(resource_id),
            ):
                raise ValueError("the answer differs from the record its statement kept")
            return HttpResponse(body, status_code=status_code, media_type="application/json")
        if self.key is not None:
            if replay_as is not None:
                self.stored = (replay_as.status, json.dumps(replay_as.body()).encode(), None, None)
            elif reread is not None:
                name, resource_id = reread
                if name not in _READERS:
                    raise ValueError(f"no reader named {name!r}")
                self.stored = (status_code, None, name, str(resource_id))
            else:
                self.stored = (status_code, body, None, None)
        return HttpResponse(body, status_code=status_code, media_type="application/json")


@dataclass(frozen=True, slots=True)
class IdempotentCall(Generic[S]):
    """What an idempotent POST works with: the request's unit of work, its caller, admitted,
    and its Idempotency-Key, settled before the work."""

    session: AsyncSession
    subject: S
    idempotency: Idempotency


def idempotent(
    allowed: tuple[type[S], ...],
    *,
    scopes: frozenset[Scope] = frozenset(),
    then: Callable[[S], S] | None = None,
) -> Callable[..., AsyncIterator[IdempotentCall[S]]]:
    """The one dependency of an idempotent POST (the answer paths among them): its session,
    its caller (of the `allowed` kinds, holding `scopes`, and passing `then`), and its
    Idempotency-Key settled before the work, the answer stored in the request's transaction
    once the endpoint has given it (so it commits with the work).

    One dependency rather than a session, an authenticator and a key side by side: FastAPI
    walks every dependency of a request again, a cached one's own dependencies included,
    and the three side by side were 13 of them for POST /v1/responses."""
    admit = admission(allowed, scopes=scopes)

    async def idempotent_call(
        request: Request,
        credentials: Credentials,
        key: Annotated[
            str | None,
            Header(
                alias=HEADER,
                description="makes a retry safe: the same key and body return the stored result",
            ),
        ] = None,
    ) -> AsyncIterator[IdempotentCall[S]]:
        probe = Probe(key) if key is not None and _valid(key) else None
        async with request_session(request) as session:
            riders = None if probe is None else probe.riders
            subject = admit(await subject_of(request, session, credentials, riders))
            if then is not None:
                subject = then(subject)
            settings: Settings = request.app.state.settings
            idempotency = await _settle(request, session, subject, settings, key, probe)
            try:
                yield IdempotentCall(session, subject, idempotency)
            except CompanionRefused as exc:
                if exc.name != KEEP:
                    raise
                # As _keep's INSERT 0 0: the holder committed since the look-up.
                await _replay_stored(session, idempotency)
            await _keep(session, idempotency)

    return idempotent_call


async def _keep(session: AsyncSession, idempotency: Idempotency) -> None:
    """Store the answer the endpoint gave under its key, in the work's transaction."""
    if idempotency.stored is None:
        return
    conn = await driver(session)
    kept = await conn.execute(
        _KEEP,
        idempotency.workspace_id,
        idempotency.key,
        idempotency.fingerprint,
        *idempotency.stored,
    )
    if kept == "INSERT 0 0":
        # The holder committed between this request's look-up and its lock (see _FIND): answer
        # what it stored, and roll this request's work back.
        await _replay_stored(session, idempotency)


async def _replay_stored(session: AsyncSession, idempotency: Idempotency) -> NoReturn:
    """Raise the replay of the record another request stored under the key since."""
    conn = await driver(session)
    record = await conn.fetchrow(_LOOK, idempotency.workspace_id, idempotency.key)
    raise await _replay(session, idempotency.workspace_id, record)


def _valid(key: str) -> bool:
    return bool(key) and len(key) <= MAX_KEY_LENGTH and key.isprintable()


async def _settle(
    request: Request,
    session: AsyncSession,
    subject: Subject,
    settings: Settings,
    key: str | None,
    probe: Probe | None = None,
) -> Idempotency:
    body = await request.body()
    fingerprint = _fingerprint(request, body)
    if key is None:
        return Idempotency(subject.workspace_id, None, fingerprint)
    if not _valid(key):
        raise Unprocessable(
            f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable characters",
            errors=[field_error(["header", HEADER], "invalid idempotency key")],
        )
    # Keys are kept where the subject keeps them (an API key's: workspace-wide).
    key = subject.idempotency_key(key)
    workspace_id = subject.workspace_id
    conn = await driver(session)
    record = None if probe is None else probe.record()
    if record is None:
        record = await conn.fetchrow(_FIND, workspace_id, key, f"{workspace_id}:{key}")
    locked = record["locked"]
    if not locked and record["created_at"] is None:
        # Held by another request: the original at work, or it finished since this
        # statement's snapshot and a retry holds the lock while it replays.
        record = await conn.fetchrow(_LOOK, workspace_id, key)
        if record is None:
            raise _in_progress()
    if record["created_at"] is not None:
        ttl = timedelta(hours=settings.idempotency_ttl_hours)
        if record["created_at"] < utcnow() - ttl:
            if not locked:  # another request is forgetting it and doing the work anew
                raise _in_progress()
            await conn.execute(_FORGET, workspace_id, key)
        elif record["fingerprint"] != fingerprint:
            raise IdempotencyMismatch(
                f"this {HEADER} was already used with a different request body or path"
            )
        else:
            raise await _replay(session, workspace_id, record)
    return Idempotency(workspace_id, key, fingerprint)


async def _replay(session: AsyncSession, workspace_id: uuid.UUID, record: Any) -> Replay:
    """The stored answer, or the resource it showed read again (410 when it was erased)."""
    body: bytes | None = record["body"]
    if body is not None:
        return Replay(record["status_code"], body)
    shown = await _READERS[record["reread"]](session, workspace_id, record["resource_id"])
    if shown is None:
        gone = Gone(
            f"what this {HEADER} created was deleted since (erased or removed); "
            "a new request needs a new key"
        )
        return Replay(gone.status, json.dumps(gone.body()).encode())
    return Replay(record["status_code"], shown.model_dump_json(by_alias=True).encode())


def _in_progress() -> Conflict:
    return Conflict(
        f"a request with this {HEADER} is still in progress; retry after it completes",
        headers={"Retry-After": "1"},
    )


# Function scope, like the session it holds: the answer is stored before the session commits,
# and both before the response is sent.
IdempotentWrite = Annotated[
    IdempotentCall[ApiKeySubject],
    Depends(idempotent((ApiKeySubject,), scopes=frozenset({Scope.WRITE})), scope="function"),
]
IdempotentAdmin = Annotated[
    IdempotentCall[ApiKeySubject],
    Depends(idempotent((ApiKeySubject,), scopes=frozenset({Scope.ADMIN})), scope="function"),
]
# The public calls: a live invitation's token, keys kept per invitation
# (InvitationSubject.idempotency_key).
IdempotentAnswer = Annotated[
    IdempotentCall[InvitationSubject],
    Depends(idempotent((InvitationSubject,), then=live), scope="function"),
]


def install_replay_handler(app: FastAPI) -> None:
    @app.exception_handler(Replay)
    async def _replay(_: Request, exc: Replay) -> HttpResponse:
        media_type = PROBLEM_JSON if exc.status_code >= 400 else "application/json"
        return HttpResponse(
            exc.body, status_code=exc.status_code, media_type=media_type, headers={REPLAYED: "true"}
        )
