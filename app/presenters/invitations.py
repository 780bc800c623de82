"""Invitations as the API shows them: the effective status, the suppression, and (once) the
token with its hosted-page URL."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.errors import ProblemError
from app.models import Invitation, InvitationChannel
from app.schemas.invitations import (
    InvitationBatchResult,
    InvitationCreated,
    InvitationItemResult,
    InvitationRead,
    PublicAnswerRead,
    PublicAttribute,
    PublicInvitationRead,
    PublicTexts,
    Suppression,
)
from app.services.answers import Answered
from app.services.batches import ItemOutcome
from app.services.invitations import Created, effective_status
from app.services.surveys import SurveyTexts


def invitation_read(invitation: Invitation, now: datetime) -> InvitationRead:
    suppression = (
        None
        if invitation.suppression_rule is None
        else Suppression(rule=invitation.suppression_rule, until=invitation.suppressed_until)
    )
    return InvitationRead(
        id=invitation.id,
        stakeholder_id=invitation.stakeholder_id,
        account_id=invitation.account_id,
        survey=invitation.survey,
        channel=InvitationChannel(invitation.channel),
        locale=invitation.locale,
        status=effective_status(invitation, now),
        suppression=suppression,
        expires_at=invitation.expires_at,
        opened_at=invitation.opened_at,
        answered_at=invitation.answered_at,
        dismissed_at=invitation.dismissed_at,
        revoked_at=invitation.revoked_at,
        response_id=invitation.response_id,
        created_at=invitation.created_at,
        updated_at=invitation.updated_at,
    )


def invitation_created(created: Created, now: datetime, public_base_url: str) -> InvitationCreated:
    token = created.token
    return InvitationCreated(
        **invitation_read(created.invitation, now).model_dump(),
        token=token,
        url=None if token is None else f"{public_base_url}/s/{token}",
    )


def batch_result(
    outcomes: Mapping[int, Created | ProblemError | ItemOutcome[Any]],
    now: datetime,
    public_base_url: str,
) -> InvitationBatchResult:
    results: list[InvitationItemResult] = []
    for index in sorted(outcomes):
        outcome = outcomes[index]
        if isinstance(outcome, ItemOutcome):
            results.append(InvitationItemResult.model_validate(outcome))
            continue
        if isinstance(outcome, ProblemError):
            results.append(
                InvitationItemResult(index=index, status=outcome.status, problem=outcome.body())
            )
            continue
        shown = invitation_created(outcome, now, public_base_url)
        results.append(
            InvitationItemResult(
                index=index,
                status=201 if shown.token is not None else 200,
                id=shown.id,
                invitation=shown,
            )
        )
    issued = sum(1 for r in results if r.status == 201)
    suppressed = sum(1 for r in results if r.status == 200)
    return InvitationBatchResult(
        issued=issued,
        suppressed=suppressed,
        failed=len(results) - issued - suppressed,
        results=results,
    )


def public_invitation(
    invitation: Invitation,
    stakeholder_name: str | None,
    now: datetime,
    *,
    company: str,
    texts: SurveyTexts,
    answer: Answered | None,
) -> PublicInvitationRead:
    first = stakeholder_name.split()[0] if stakeholder_name and stakeholder_name.split() else None
    return PublicInvitationRead(
        id=invitation.id,
        survey=invitation.survey,
        channel=InvitationChannel(invitation.channel),
        locale=invitation.locale,
        status=effective_status(invitation, now),
        first_name=first,
        expires_at=invitation.expires_at,
        company=company,
        texts=PublicTexts(
            locale=texts.locale,
            question=texts.question,
            low_label=texts.low_label,
            high_label=texts.high_label,
            follow_up=texts.follow_up,
            thank_you=texts.thank_you,
            attributes=[
                PublicAttribute(key=a.key, label=a.label, scale=a.scale) for a in texts.attributes
            ],
        ),
        answer=None if answer is None else public_answer(answer),
    )


def public_answer(answer: Answered) -> PublicAnswerRead:
    response = answer.response
    return PublicAnswerRead(
        id=response.id,
        invitation_id=answer.invitation.id,
        score=response.score,
        comment=response.comment,
        attributes=response.attributes,
        answered_at=answer.answered_at,
        editable_until=answer.editable_until,
    )
