"""Dependencies shared by the routers: who is calling, with which scope, and request options."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.db import SessionDep
from app.errors import Forbidden, Unauthorized
from app.models import Scope
from app.pagination import MAX_LIMIT
from app.schemas import Timestamp
from app.services.keys import authenticate, granted

bearer = HTTPBearer(auto_error=False, description="an API key of the workspace")


@dataclass(frozen=True, slots=True)
class Principal:
    workspace_id: uuid.UUID
    key_id: uuid.UUID
    scopes: frozenset[Scope]


def utcnow() -> datetime:
    return datetime.now(UTC)


async def get_principal(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise Unauthorized("send an API key as `Authorization: Bearer <key>`", headers=challenge)
    key = await authenticate(session, credentials.credentials, now=utcnow())
    if key is None:
        raise Unauthorized("the API key is unknown or revoked", headers=challenge)
    return Principal(key.workspace_id, key.id, granted(key.scopes))


def require(scope: Scope) -> object:
    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if scope not in principal.scopes:
            raise Forbidden(f"this API key does not have the {scope.value!r} scope")
        return principal

    return Depends(check)


ReadAuth = Annotated[Principal, require(Scope.READ)]
WriteAuth = Annotated[Principal, require(Scope.WRITE)]
AdminAuth = Annotated[Principal, require(Scope.ADMIN)]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
UpdatedSince = Annotated[
    Timestamp | None,
    Query(description="only rows created or changed at or after this instant (RFC 3339)"),
]
