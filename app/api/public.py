"""The public calls: made by the invited person with their invitation token, never an API key.

Each acts only on the token's own invitation.
"""

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi import Response as HttpResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.auth import InvitationSubject, KnownInvitationAuth, PublicAuth
from app.api.deps import HeadRequest, utcnow
from app.api.idempotency import IdempotentAnswer, rereads
from app.bodies import StrictRoute
from app.db import SessionDep
from app.errors import NotFound
from app.presenters.invitations import public_answer, public_invitation
from app.schemas import problem_doc
from app.schemas.invitations import (
    PublicAnswer,
    PublicAnswerPatch,
    PublicAnswerRead,
    PublicInvitationRead,
)
from app.services import answers, invitations, surveys

router = APIRouter(prefix="/v1/public", tags=["public"], route_class=StrictRoute)

TOKEN_DOC: dict[int | str, dict[str, Any]] = {
    401: problem_doc("Missing, unknown or malformed invitation token"),
    403: problem_doc("An API key: the public calls accept only an invitation token"),
}
LIVE_DOC: dict[int | str, dict[str, Any]] = {
    **TOKEN_DOC,
    410: problem_doc("The invitation expired or was revoked"),
}
ANSWERED_DOC = (
    "type /problems/already-answered: the invitation was answered (`answered_at` and "
    "`response_id` name the answer)"
)


@router.get(
    "/invitation",
    response_model=PublicInvitationRead,
    responses=LIVE_DOC,
    operation_id="get_public_invitation",
)
async def get_public_invitation(
    session: SessionDep, auth: PublicAuth, head: HeadRequest
) -> PublicInvitationRead:
    """What to show the invited person (and their answer once given); marks it opened."""
    # A HEAD is no visit: link checkers send them.
    return await invitation_view(session, auth, now=utcnow(), mark_opened=not head)


async def invitation_view(
    session: AsyncSession, subject: InvitationSubject, *, now: datetime, mark_opened: bool
) -> PublicInvitationRead:
    """What the invitation shows its person: here, and on the hosted page (which never marks it
    opened on a GET: mail scanners fetch the links they find)."""
    workspace_id = subject.workspace_id
    invitation, name, role = await invitations.open_invitation(
        session, workspace_id, subject.invitation_id, now=now, mark_opened=mark_opened
    )
    definition = await surveys.find_definition(session, workspace_id, invitation.survey)
    company = await surveys.company_name(session, workspace_id)
    texts = surveys.texts_for(definition, role=role, locale=invitation.locale, company=company)
    given = await answers.given_answer(session, workspace_id, invitation)
    return public_invitation(invitation, name, now, company=company, texts=texts, answer=given)


@router.post(
    "/answers",
    response_model=PublicAnswerRead,
    status_code=201,
    responses={
        **LIVE_DOC,
        409: problem_doc(
            f"{ANSWERED_DOC}; or a request with the same Idempotency-Key is still in progress "
            "(`Retry-After`)",
            retry_after=True,
        ),
        422: problem_doc(
            "Invalid body (a score that is not an integer 0-10, an attribute out of the "
            "survey's scale): nothing is stored; or an Idempotency-Key reused with another body"
        ),
    },
    operation_id="create_public_answer",
)
async def create_public_answer(body: PublicAnswer, call: IdempotentAnswer) -> HttpResponse:
    """Answer the invitation: records one response (201); a second answer is a 409."""
    invitation_id = call.subject.invitation_id
    # The Idempotency-Key's record is written by the statement that stores the answer.
    keep = call.idempotency.kept_with_answer(201, PUBLIC_ANSWER, invitation_id)
    answered = await answers.answer(
        call.session,
        call.subject,
        body,
        now=utcnow(),
        companions=() if keep is None else (keep,),
    )
    return call.idempotency.respond(
        public_answer(answered), 201, reread=(PUBLIC_ANSWER, call.subject.invitation_id)
    )


PUBLIC_ANSWER = "public_answer"


@rereads(PUBLIC_ANSWER)
async def _reread_answer(
    session: AsyncSession, workspace_id: uuid.UUID, invitation_id: str
) -> PublicAnswerRead | None:
    """A replay shows the invitation's answer as it is now (edits included); erased, it is gone."""
    try:
        invitation = await invitations.get_invitation(
            session, workspace_id, uuid.UUID(invitation_id)
        )
    except NotFound:
        return None
    given = await answers.given_answer(session, workspace_id, invitation)
    return None if given is None else public_answer(given)


@router.patch(
    "/answers",
    response_model=PublicAnswerRead,
    responses={
        **LIVE_DOC,
        409: problem_doc(
            "type /problems/edit-window-closed: more than 30 minutes since the answer "
            "(`editable_until` says when it closed); type /problems/not-answered: nothing to "
            "edit yet"
        ),
        422: problem_doc("Invalid body, or an attribute out of the survey's scale"),
    },
    operation_id="update_public_answer",
)
async def update_public_answer(
    body: PublicAnswerPatch, session: SessionDep, auth: PublicAuth
) -> PublicAnswerRead:
    """Change the answer's comment or attributes, for 30 minutes after answering."""
    answered = await answers.edit_answer(
        session, auth.workspace_id, auth.invitation_id, body, now=utcnow()
    )
    return public_answer(answered)


@router.post(
    "/dismissals",
    status_code=204,
    responses={**LIVE_DOC, 409: problem_doc(ANSWERED_DOC)},
    operation_id="create_public_dismissal",
)
async def create_public_dismissal(session: SessionDep, auth: PublicAuth) -> None:
    """Dismiss the invitation ("not now"); dismissing again changes nothing."""
    await answers.dismiss(session, auth.workspace_id, auth.invitation_id, now=utcnow())


@router.post(
    "/unsubscribe",
    status_code=204,
    responses=TOKEN_DOC,
    operation_id="create_public_unsubscribe",
)
async def create_public_unsubscribe(session: SessionDep, auth: KnownInvitationAuth) -> None:
    """Never invite this person again, from any invitation of theirs, even an old one."""
    await answers.unsubscribe(session, auth.workspace_id, auth.invitation_id, now=utcnow())
