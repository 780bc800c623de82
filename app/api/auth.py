"""Who is calling: subjects, and the one factory that turns scopes and allowed subjects into the
`Annotated` alias a route declares.

A subject is an authenticated caller: an API key of a workspace, or an invitation token (a
stakeholder answering their own survey, `npsi_...`). A public route names the one kind it
accepts (`PublicAuth`); the API's aliases accept only API keys. Each alias resolves the caller
once per request (`get_subject` is cached by FastAPI), then checks its kind and scopes.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, ClassVar, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Scope as AsgiScope

from app.api.deps import utcnow
from app.db import SessionDep
from app.errors import Forbidden, Unauthorized
from app.local_limits import FLUSH_SCOPE_KEY, ORIGIN_SCOPE_KEY
from app.models import InvitationChannel, InvitationStatus, Scope
from app.services.answers import ensure_live
from app.services.invitation_tokens import is_invitation_token
from app.services.invitations import status_as_read, token_holder
from app.services.keys import authenticate, granted
from app.services.lookups import Rider

bearer = HTTPBearer(
    auto_error=False,
    description="an API key of the workspace, or on /v1/public/* an invitation token",
)
CHALLENGE = {"WWW-Authenticate": "Bearer"}
UNKNOWN_KEY = "the API key is unknown or revoked"


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

    # The same in SQL, of the caller's look-up row `k` (app.api.idempotency.Probe).
    idempotency_sql: ClassVar[str] = "{key}"


@dataclass(frozen=True, slots=True)
class InvitationSubject:
    """An invitation's token: it acts on that invitation only, and holds no API scope."""

    kind: ClassVar[str] = "invitation token"
    scopes: ClassVar[frozenset[Scope]] = frozenset()
    workspace_id: uuid.UUID
    invitation_id: uuid.UUID
    stakeholder_id: str
    survey: str
    channel: InvitationChannel
    status: InvitationStatus  # as read when the request began (expiry applied)

    @property
    def name(self) -> str:
        return f"invitation:{self.invitation_id}"

    def idempotency_key(self, key: str) -> str:
        """Kept per invitation, so one person's key never meets another's."""
        return f"invitation:{self.invitation_id}:{key}"

    idempotency_sql: ClassVar[str] = "'invitation:' || k.id::text || ':' || {key}"


# Every kind of subject.
Subject = ApiKeySubject | InvitationSubject
S = TypeVar("S", bound=Subject)


async def invitation_subject(
    session: AsyncSession,
    raw: str,
    scope: AsgiScope | None = None,
    rider: Rider | None = None,
) -> InvitationSubject | None:
    """The subject of an invitation token (from a header or the hosted page's URL), or None
    when no invitation has it. The request's `scope` carries what the guard left for the
    look-up to do on its way (app.guard): its rate-limit counts to share, its Origin."""
    holder = None
    if is_invitation_token(raw):
        flush = origin = None
        if scope is not None:
            flush, origin = scope.pop(FLUSH_SCOPE_KEY, None), scope.get(ORIGIN_SCOPE_KEY)
        holder = await token_holder(session, raw, flush=flush, origin=origin, rider=rider)
    if holder is None:
        return None
    return InvitationSubject(
        holder.workspace_id,
        holder.id,
        holder.stakeholder_id,
        holder.survey,
        InvitationChannel(holder.channel),
        status_as_read(holder.status, holder.expires_at, utcnow()),
    )


async def subject_of(
    request: Request,
    session: AsyncSession,
    credentials: HTTPAuthorizationCredentials | None,
    riders: Callable[[type[Subject]], Rider | None] | None = None,
) -> Subject | None:
    """The caller of this request, or None when it sent no credentials; bad ones are a 401.
    `riders` gives the work to do in the look-up's statement for a kind of caller, if any
    (app.services.lookups)."""
    if credentials is None:
        return None
    raw = credentials.credentials
    if is_invitation_token(raw):
        rider = None if riders is None else riders(InvitationSubject)
        subject = await invitation_subject(session, raw, request.scope, rider)
        if subject is None:
            raise Unauthorized("the invitation token is unknown", headers=CHALLENGE)
        return subject
    flush = request.scope.pop(FLUSH_SCOPE_KEY, None)  # the rate-limit counts to share (app.guard)
    rider = None if riders is None else riders(ApiKeySubject)
    key = await authenticate(session, raw, now=utcnow(), flush=flush, rider=rider)
    if key is None:
        raise Unauthorized(UNKNOWN_KEY, headers=CHALLENGE)
    return ApiKeySubject(key.workspace_id, key.id, granted(key.scopes), key.prefix)


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def get_subject(
    request: Request, session: SessionDep, credentials: Credentials
) -> Subject | None:
    """The caller of this request (subject_of), resolved once per request."""
    return await subject_of(request, session, credentials)


def admission(
    allowed: tuple[type[S], ...], *, scopes: frozenset[Scope] = frozenset()
) -> Callable[[Subject | None], S]:
    """A check that admits only `allowed` kinds of subject holding every one of `scopes`: 401
    without one, 403 for another kind or a missing scope."""

    wanted = " or ".join(f"an {kind.kind}" for kind in allowed)
    short = "key" if allowed == (ApiKeySubject,) else "token"

    def admit(subject: Subject | None) -> S:
        if subject is None:
            raise Unauthorized(
                f"send {wanted} as `Authorization: Bearer <{short}>`", headers=CHALLENGE
            )
        if not isinstance(subject, allowed):
            raise Forbidden(f"an {subject.kind} cannot call this endpoint")
        missing = sorted(scopes - subject.scopes)
        if missing:
            raise Forbidden(f"this {subject.kind} does not have the {missing[0].value!r} scope")
        return subject

    return admit


def authenticator(
    allowed: tuple[type[S], ...], *, scopes: frozenset[Scope] = frozenset()
) -> Callable[..., Awaitable[S]]:
    """A dependency that admits only `allowed` kinds of subject holding every one of `scopes`."""
    admit = admission(allowed, scopes=scopes)

    async def check(subject: Annotated[Subject | None, Depends(get_subject)]) -> S:
        return admit(subject)

    return check


api_key = authenticator((ApiKeySubject,))
AnySubject = Annotated[ApiKeySubject, Depends(api_key)]
ReadAuth = Annotated[
    ApiKeySubject, Depends(authenticator((ApiKeySubject,), scopes=frozenset({Scope.READ})))
]
WriteAuth = Annotated[
    ApiKeySubject, Depends(authenticator((ApiKeySubject,), scopes=frozenset({Scope.WRITE})))
]
AdminAuth = Annotated[
    ApiKeySubject, Depends(authenticator((ApiKeySubject,), scopes=frozenset({Scope.ADMIN})))
]


# A known invitation token, whatever its invitation's status (unsubscribing from an old email).
KnownInvitationAuth = Annotated[InvitationSubject, Depends(authenticator((InvitationSubject,)))]


def live(subject: InvitationSubject) -> InvitationSubject:
    """`subject` if its invitation can still be acted on: expired or revoked is 410."""
    ensure_live(subject.status)
    return subject


async def live_invitation(subject: KnownInvitationAuth) -> InvitationSubject:
    """An invitation token whose invitation can still be acted on (live)."""
    return live(subject)


PublicAuth = Annotated[InvitationSubject, Depends(live_invitation)]
