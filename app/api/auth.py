"""Who is calling: subjects, and the one factory that turns scopes and allowed subjects into the
`Annotated` alias a route declares.

A subject is an authenticated caller. Today there is one kind, an API key of a workspace; an
invitation token (a stakeholder answering their own survey) will be a second, and a public route
will name the one kind it accepts. Each alias resolves the caller once per request
(`get_subject` is cached by FastAPI), then checks its kind and scopes.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, ClassVar, TypeVar

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.deps import utcnow
from app.db import SessionDep
from app.errors import Forbidden, Unauthorized
from app.models import Scope
from app.services.keys import authenticate, granted

bearer = HTTPBearer(auto_error=False, description="an API key of the workspace")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class ApiKeySubject:
    """A workspace's API key, with every scope it holds (admin implies write implies read)."""

    kind: ClassVar[str] = "API key"
    workspace_id: uuid.UUID
    key_id: uuid.UUID
    scopes: frozenset[Scope]
    prefix: str

    @property
    def name(self) -> str:
        """How the subject is named where a change is recorded (a revision's changed_by)."""
        return f"api_key:{self.prefix}"

    def idempotency_key(self, key: str) -> str:
        """Where an Idempotency-Key is kept: workspace-wide, so any of its keys may retry."""
        return key


# Every kind of subject; a union once there is more than one.
Subject = ApiKeySubject
S = TypeVar("S", bound=Subject)


async def get_subject(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Subject | None:
    """The caller of this request, or None when it sent no credentials; bad ones are a 401."""
    if credentials is None:
        return None
    key = await authenticate(session, credentials.credentials, now=utcnow())
    if key is None:
        raise Unauthorized("the API key is unknown or revoked", headers=_CHALLENGE)
    return ApiKeySubject(key.workspace_id, key.id, granted(key.scopes), key.prefix)


def authenticator(
    allowed: tuple[type[S], ...], *, scopes: frozenset[Scope] = frozenset()
) -> Callable[..., Awaitable[S]]:
    """A dependency that admits only `allowed` kinds of subject holding every one of `scopes`."""

    async def check(subject: Annotated[Subject | None, Depends(get_subject)]) -> S:
        if subject is None:
            raise Unauthorized(
                "send an API key as `Authorization: Bearer <key>`", headers=_CHALLENGE
            )
        if not isinstance(subject, allowed):
            raise Forbidden(f"an {subject.kind} cannot call this endpoint")
        missing = sorted(scopes - subject.scopes)
        if missing:
            raise Forbidden(f"this {subject.kind} does not have the {missing[0].value!r} scope")
        return subject

    return check


AnySubject = Annotated[Subject, Depends(authenticator((ApiKeySubject,)))]
ReadAuth = Annotated[
    ApiKeySubject, Depends(authenticator((ApiKeySubject,), scopes=frozenset({Scope.READ})))
]
WriteAuth = Annotated[
    ApiKeySubject, Depends(authenticator((ApiKeySubject,), scopes=frozenset({Scope.WRITE})))
]
AdminAuth = Annotated[
    ApiKeySubject, Depends(authenticator((ApiKeySubject,), scopes=frozenset({Scope.ADMIN})))
]
