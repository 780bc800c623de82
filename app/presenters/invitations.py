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
    InvitationRead,
    PublicAnswerRead,
    PublicAttribute,
    PublicInvitationRead,
    PublicTexts,
)
from app.services.answers import Answered
from app.services.batches import ItemOutcome
from app.services.invitations import effective_status, status_as_read
from app.services.issuing import Created
from app.services.surveys import SurveyTexts

# InvitationRead's fields that are columns as they are; status and suppression are derived.
_COLUMNS = tuple(f for f in InvitationRead.model_fields if f not in ("status", "suppression"))


def _fields(columns: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """InvitationRead's fields from an invitation's columns."""
    rule = columns["suppression_rule"]
    return {name: columns[name] for name in _COLUMNS} | {
        "status": status_as_read(columns["status"], columns["expires_at"], now),
        "suppression": None
        if rule is None
        else {"rule": rule, "until": columns["suppressed_until"]},
    }


def invitation_read(invitation: Invitation, now: datetime) -> InvitationRead:
    columns = {c: getattr(invitation, c) for c in (*_COLUMNS, "status", "suppression_rule")}
    columns["suppressed_until"] = invitation.suppressed_until
    return InvitationRead.model_validate(_fields(columns, now))


def _created_fields(created: Created, now: datetime, public_base_url: str) -> dict[str, Any]:
    token = created.token
    return _fields(created.invitation, now) | {
        "token": token,
        "url": None if token is None else f"{public_base_url}/s/{token}",
    }


def invitation_created(created: Created, now: datetime, public_base_url: str) -> InvitationCreated:
    return InvitationCreated.model_validate(_created_fields(created, now, public_base_url))


def batch_result(
    outcomes: Mapping[int, Created | ProblemError | ItemOutcome[Any]],
    now: datetime,
    public_base_url: str,
) -> InvitationBatchResult:
    # Plain values validated in one call: a thousand items, not a thousand model constructions.
    results: list[dict[str, Any]] = []
    issued = suppressed = 0
    for index in sorted(outcomes):
        outcome = outcomes[index]
        if isinstance(outcome, ItemOutcome):
            results.append({"index": index, "status": outcome.status, "problem": outcome.problem})
        elif isinstance(outcome, ProblemError):
            results.append({"index": index, "status": outcome.status, "problem": outcome.body()})
        else:
            shown = _created_fields(outcome, now, public_base_url)
            status = 201 if shown["token"] is not None else 200
            issued, suppressed = issued + (status == 201), suppressed + (status == 200)
            results.append(
                {"index": index, "status": status, "id": shown["id"], "invitation": shown}
            )
    return InvitationBatchResult.model_validate(
        {
            "issued": issued,
            "suppressed": suppressed,
            "failed": len(results) - issued - suppressed,
            "results": results,
        }
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
        invitation_id=answer.invitation_id,
        score=response.score,
        comment=response.comment,
        attributes=response.attributes,
        answered_at=answer.answered_at,
        editable_until=answer.editable_until,
    )
