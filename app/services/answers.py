"""The invited person's side of an invitation: answer it, edit the answer for a while, dismiss
it, unsubscribe. Each acts on one invitation of one workspace (the token's), locked first, but
an answer, which marks its invitation in the statement that stores it.

An answer is an ordinary response recorded by app.services.ingest.record_response (the role
snapshot, the survey's catalog, the chain), in the request's transaction, so every score sees it
at once. A retry never counts twice: the invitation is marked answered only if it is still
answerable when the row is written (else everything rolls back), and the response's
external_id is derived from the invitation (`invitation:<id>`), so the unique
(workspace_id, external_id) constraint refuses a second response even if the row said otherwise
(then the same answer again links the stored response; another answer is the 409).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import (
    AlreadyAnswered,
    Conflict,
    EditWindowClosed,
    ExternalIdConflict,
    Gone,
    NotAnswered,
    rfc3339,
)
from app.models import Channel, Invitation, InvitationStatus, SurveyResponse, Unsubscribe
from app.schemas import ResponseCreate, ResponsePatch
from app.schemas.invitations import PublicAnswer, PublicAnswerPatch
from app.services.corrections import correct_response
from app.services.ingest import record_response
from app.services.invitations import (
    ANSWERING,
    OPEN,
    answering,
    effective_status,
    get_invitation,
    lock_invitation,
    lock_invitees,
    mark_answered,
)
from app.services.response_rows import Companion, CompanionRefused
from app.services.responses import get_response

EDIT_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class Answered:
    """An answered invitation (its id, when it was answered) and the response it recorded."""

    invitation_id: uuid.UUID
    answered_at: datetime
    response: SurveyResponse

    @property
    def editable_until(self) -> datetime:
        return self.answered_at + EDIT_WINDOW


def external_id(invitation_id: uuid.UUID) -> str:
    """The external_id of an invitation's response: one response per invitation, by constraint."""
    return f"invitation:{invitation_id}"


def ensure_live(status: InvitationStatus) -> None:
    """Expired or revoked: the token can no longer act on its invitation (410)."""
    if status in (InvitationStatus.EXPIRED, InvitationStatus.REVOKED):
        raise Gone(f"this invitation is {status.value}; it can no longer be answered")


def _already(answered_at: datetime | None, response_id: uuid.UUID | None) -> AlreadyAnswered:
    assert answered_at is not None
    return AlreadyAnswered(
        f"this invitation was answered at {rfc3339(answered_at)}; it takes one answer "
        "(PATCH /v1/public/answers edits its comment and attributes for 30 minutes)",
        answered_at=answered_at,
        response_id=response_id,
    )


async def _stamp(session: AsyncSession) -> datetime:
    stamp: datetime | None = await session.scalar(select(func.now()))
    assert stamp is not None
    return stamp


class Answering(Protocol):
    """The invitation a token answers, as its authentication read it."""

    @property
    def workspace_id(self) -> uuid.UUID: ...
    @property
    def invitation_id(self) -> uuid.UUID: ...
    @property
    def stakeholder_id(self) -> str: ...
    @property
    def survey(self) -> str: ...
    @property
    def channel(self) -> str: ...


async def answer(
    session: AsyncSession,
    invitation: Answering,
    body: PublicAnswer,
    *,
    now: datetime,
    companions: Sequence[Companion] = (),
) -> Answered:
    """Record the answer as a response and mark the invitation answered; a second one is a 409.

    The invitation is marked in the statement that stores the response, and only while it is
    still answerable (open or dismissed, unexpired: dismissing is "not now", not "never"); when
    it no longer is, the answer rolls back and the error says why. Other `companions` (the
    Idempotency-Key's record) write in that statement too; their refusals are the caller's."""
    workspace_id, invitation_id = invitation.workspace_id, invitation.invitation_id
    item = ResponseCreate(
        stakeholder_id=invitation.stakeholder_id,
        score=body.score,
        comment=body.comment,
        survey=invitation.survey,
        channel=Channel(invitation.channel),
        attributes=body.attributes,
        external_id=external_id(invitation_id),
    )
    try:
        recorded = await record_response(
            session,
            workspace_id,
            item,
            now=now,
            announce=[("invitation.answered", {"invitation_id": str(invitation_id)})],
            companions=(answering(invitation_id, item.submitted_at or now, now), *companions),
        )
    except ExternalIdConflict as exc:
        # Its response is stored already: this is a second answer.
        stored = await get_response(session, workspace_id, uuid.UUID(exc.response_id))
        raise _already(stored.submitted_at, stored.id) from None
    except CompanionRefused as exc:
        if exc.name != ANSWERING:
            raise
        # Answered, revoked or expired since the token was read: the locked row says which.
        await _refuse(session, workspace_id, invitation_id, now)
    response = recorded.response
    if not recorded.created:
        # The same answer as the response stored for it: a repeat when the invitation says
        # answered; else (the constraint held where the row did not) it links that response.
        locked = await _still_answerable(session, workspace_id, invitation_id, now)
        await mark_answered(
            session, locked, answered_at=response.submitted_at, response_id=response.id
        )
    return Answered(invitation_id, response.submitted_at, response)


async def _still_answerable(
    session: AsyncSession, workspace_id: uuid.UUID, invitation_id: uuid.UUID, now: datetime
) -> Invitation:
    """The invitation, locked; a 409 when it was answered, a 410 when expired or revoked."""
    locked = await lock_invitation(session, workspace_id, invitation_id)
    status = effective_status(locked, now)
    if status == InvitationStatus.ANSWERED:
        raise _already(locked.answered_at, locked.response_id)
    ensure_live(status)
    return locked


async def _refuse(
    session: AsyncSession, workspace_id: uuid.UUID, invitation_id: uuid.UUID, now: datetime
) -> NoReturn:
    await _still_answerable(session, workspace_id, invitation_id, now)
    raise Conflict("the invitation changed while it was being answered; send the answer again")


async def edit_answer(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    invitation_id: uuid.UUID,
    body: PublicAnswerPatch,
    *,
    now: datetime,
) -> Answered:
    """Change the comment or attributes of the invitation's response (a revision by the
    invitation), within EDIT_WINDOW of the answer; before any answer it is a 409 not-answered."""
    invitation = await get_invitation(session, workspace_id, invitation_id, lock=True)
    if (
        invitation.status != InvitationStatus.ANSWERED
        or invitation.answered_at is None
        or invitation.response_id is None
    ):
        ensure_live(effective_status(invitation, now))
        raise NotAnswered(
            "this invitation has no answer to edit yet: answer it first (POST /v1/public/answers)"
        )
    answered_at = invitation.answered_at
    until = answered_at + EDIT_WINDOW
    if now >= until:
        raise EditWindowClosed(
            f"an answer can be edited for 30 minutes after it was given; this one could be "
            f"edited until {rfc3339(until)}",
            editable_until=until,
        )
    patch = ResponsePatch.model_validate(
        {name: getattr(body, name) for name in body.model_fields_set}
    )
    response = await correct_response(
        session,
        workspace_id,
        invitation.response_id,
        patch,
        by=f"invitation:{invitation.id}",
        now=now,
    )
    return Answered(invitation.id, answered_at, response)


async def given_answer(
    session: AsyncSession, workspace_id: uuid.UUID, invitation: Invitation
) -> Answered | None:
    """The invitation's answer, when it has one (and its response was not erased since)."""
    if invitation.status != InvitationStatus.ANSWERED or invitation.response_id is None:
        return None
    response = await session.scalar(
        select(SurveyResponse).where(
            SurveyResponse.workspace_id == workspace_id,
            SurveyResponse.id == invitation.response_id,
        )
    )
    if response is None:
        return None
    assert invitation.answered_at is not None
    return Answered(invitation.id, invitation.answered_at, response)


async def dismiss(
    session: AsyncSession, workspace_id: uuid.UUID, invitation_id: uuid.UUID, *, now: datetime
) -> Invitation:
    """Mark the invitation dismissed (the after_dismissal_days rule counts from dismissed_at);
    dismissing again keeps the first dismissed_at; an answered one is a 409."""
    invitation = await get_invitation(session, workspace_id, invitation_id, lock=True)
    status = effective_status(invitation, now)
    if status == InvitationStatus.ANSWERED:
        raise _already(invitation.answered_at, invitation.response_id)
    if status == InvitationStatus.DISMISSED:
        return invitation
    ensure_live(status)
    invitation.status = InvitationStatus.DISMISSED.value
    invitation.dismissed_at = now
    invitation.updated_at = await _stamp(session)
    await session.flush()
    return invitation


async def unsubscribe(
    session: AsyncSession, workspace_id: uuid.UUID, invitation_id: uuid.UUID, *, now: datetime
) -> None:
    """The invitation's stakeholder is never invited again (the unsubscribed rule), whatever
    this invitation's status; unsubscribing twice changes nothing.

    Their other open invitations are revoked: the person asked to be left alone, and a live
    link in another email or a widget token would keep asking them (the CRM reads `revoked`).
    This one is left as it is, so the page they are on can still take their answer.
    """
    invitation = await get_invitation(session, workspace_id, invitation_id)
    stakeholder_id = invitation.stakeholder_id
    # The lock issuing takes: an invitation issued concurrently either sees the unsubscribe or
    # is committed before it, and then revoked here.
    await lock_invitees(session, workspace_id, [stakeholder_id])
    await session.execute(
        insert(Unsubscribe)
        .values(workspace_id=workspace_id, stakeholder_id=stakeholder_id)
        .on_conflict_do_nothing(
            index_elements=[Unsubscribe.workspace_id, Unsubscribe.stakeholder_id]
        )
    )
    await session.execute(
        update(Invitation)
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.stakeholder_id == stakeholder_id,
            Invitation.id != invitation.id,
            Invitation.status.in_(OPEN),
            Invitation.expires_at > now,
        )
        .values(status=InvitationStatus.REVOKED.value, revoked_at=func.now(), updated_at=func.now())
        .execution_options(synchronize_session=False)
    )
