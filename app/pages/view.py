"""What every hosted page starts from: the invitation its URL's token names, and what to show.

The token in the path is the credential, as the Bearer token is on /v1/public/*: an unknown one
is a 404 page (a link that leads nowhere; there is no header to challenge), an expired or
revoked one a 410 page. Reading a page changes nothing: see `survey_view`.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.auth import InvitationSubject, invitation_subject
from app.api.public import invitation_view
from app.db import SessionDep
from app.errors import NotFound
from app.schemas.invitations import PublicInvitationRead
from app.services import answers

TokenPath = Annotated[str, Path(description="the invitation token")]


async def known_invitation(
    request: Request, token: TokenPath, session: SessionDep
) -> InvitationSubject:
    subject = await invitation_subject(session, token, request.scope)
    if subject is None:
        raise NotFound("no invitation has this token")
    return subject


KnownPage = Annotated[InvitationSubject, Depends(known_invitation)]


async def live_invitation(subject: KnownPage) -> InvitationSubject:
    answers.ensure_live(subject.status)
    return subject


LivePage = Annotated[InvitationSubject, Depends(live_invitation)]


async def survey_view(
    session: AsyncSession, subject: InvitationSubject, *, now: datetime
) -> PublicInvitationRead:
    """What GET /v1/public/invitation shows, without marking the invitation opened."""
    return await invitation_view(session, subject, now=now, mark_opened=False)


def day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M")
