"""Idempotency-Key on POST: a retry returns the stored result instead of doing the work twice.

The record is written in the same transaction as the work, so they commit or vanish together.
A transaction-scoped advisory lock on (workspace, key) makes a concurrent duplicate a 409
instead of a second execution; once the first commits, a retry finds its record and replays it.
"""

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi import Response as HttpResponse
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.auth import Subject, api_key, live_invitation
from app.api.deps import AppSettingsDep, utcnow
from app.canonical import canonical_json
from app.config import Settings
from app.db import SessionDep
from app.errors import (
    PROBLEM_JSON,
    Conflict,
    IdempotencyMismatch,
    ProblemError,
    Unprocessable,
    field_error,
)
from app.models import IdempotencyRecord

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
    try:
        canonical = canonical_json(json.loads(body)).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
    digest.update(canonical)
    return digest.digest()


class Idempotency:
    def __init__(
        self,
        session: AsyncSession,
        workspace_id: uuid.UUID,
        key: str | None,
        fingerprint: bytes,
    ) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.key = key
        self.fingerprint = fingerprint

    def respond(
        self, content: BaseModel, status_code: int, *, replay_as: ProblemError | None = None
    ) -> HttpResponse:
        """The answer, stored for retries under the key (or `replay_as` when it holds a secret)."""
        body = content.model_dump_json(by_alias=True).encode()
        if self.key is not None:
            stored_status, stored_body = status_code, body
            if replay_as is not None:
                stored_status, stored_body = replay_as.status, json.dumps(replay_as.body()).encode()
            self.session.add(
                IdempotencyRecord(
                    workspace_id=self.workspace_id,
                    key=self.key,
                    fingerprint=self.fingerprint,
                    status_code=stored_status,
                    body=stored_body,
                )
            )
        return HttpResponse(body, status_code=status_code, media_type="application/json")


def idempotency_for(
    authenticate: Callable[..., Awaitable[Subject]],
) -> Callable[..., Awaitable[Idempotency]]:
    """The Idempotency-Key dependency of routes whose caller `authenticate` admits."""

    async def get_idempotency(
        request: Request,
        session: SessionDep,
        subject: Annotated[Subject, Depends(authenticate)],
        settings: AppSettingsDep,
        key: Annotated[
            str | None,
            Header(
                alias=HEADER,
                description="makes a retry safe: the same key and body return the stored result",
            ),
        ] = None,
    ) -> Idempotency:
        return await _idempotency(request, session, subject, settings, key)

    return get_idempotency


async def _idempotency(
    request: Request,
    session: AsyncSession,
    subject: Subject,
    settings: Settings,
    key: str | None,
) -> Idempotency:
    body = await request.body()
    fingerprint = _fingerprint(request, body)
    if key is None:
        return Idempotency(session, subject.workspace_id, None, fingerprint)
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Unprocessable(
            f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable characters",
            errors=[field_error(["header", HEADER], "invalid idempotency key")],
        )
    # Keys are kept where the subject keeps them (an API key's: workspace-wide).
    key = subject.idempotency_key(key)
    got_lock = await session.scalar(
        select(
            func.pg_try_advisory_xact_lock(
                func.hashtextextended(f"{subject.workspace_id}:{key}", 0)
            )
        )
    )
    if not got_lock:
        raise Conflict(
            f"a request with this {HEADER} is still in progress; retry after it completes",
            headers={"Retry-After": "1"},
        )
    ttl = timedelta(hours=settings.idempotency_ttl_hours)
    record = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.workspace_id == subject.workspace_id, IdempotencyRecord.key == key
        )
    )
    if record is not None:
        if record.created_at < utcnow() - ttl:
            await session.delete(record)
            await session.flush()
        elif record.fingerprint != fingerprint:
            raise IdempotencyMismatch(
                f"this {HEADER} was already used with a different request body or path"
            )
        else:
            raise Replay(record.status_code, record.body)
    return Idempotency(session, subject.workspace_id, key, fingerprint)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency_for(api_key))]
# The public calls: keys kept per invitation (InvitationSubject.idempotency_key).
PublicIdempotencyDep = Annotated[Idempotency, Depends(idempotency_for(live_invitation))]


def install_replay_handler(app: FastAPI) -> None:
    @app.exception_handler(Replay)
    async def _replay(_: Request, exc: Replay) -> HttpResponse:
        media_type = PROBLEM_JSON if exc.status_code >= 400 else "application/json"
        return HttpResponse(
            exc.body, status_code=exc.status_code, media_type=media_type, headers={REPLAYED: "true"}
        )
