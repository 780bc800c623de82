"""Invitations of stakeholders to answer a survey (write scope to issue or revoke, read to list).

The token of an issued invitation is in the answer that issued it, and nowhere else ever again.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Response as HttpResponse

from app.api.auth import ReadAuth, WriteAuth
from app.api.deps import AppSettingsDep, Cursor, Limit, UpdatedSince, utcnow
from app.api.idempotency import REPLAYED, REPLAYED_HEADER, IdempotentWrite
from app.bodies import StrictRoute
from app.db import LookupSessionDep, ReadSessionDep, SessionDep
from app.errors import Conflict
from app.models import InvitationStatus
from app.pagination import DEFAULT_LIMIT
from app.presenters.invitations import batch_result, invitation_created, invitation_read
from app.schemas import ID_PATTERN, SURVEY_ID_PATTERN, Page, Timestamp, problem_doc
from app.schemas.invitations import (
    InvitationBatch,
    InvitationBatchResult,
    InvitationCreate,
    InvitationCreated,
    InvitationRead,
)
from app.services import invitations, issuing
from app.services.batches import ItemOutcome, check_size, parse_items
from app.services.settings import load_settings

router = APIRouter(prefix="/v1", tags=["invitations"], route_class=StrictRoute)

REPLAY_DOC: dict[int | str, dict[str, Any]] = {
    409: problem_doc(
        "Replay of a request that issued tokens (`Idempotent-Replayed: true`): the invitations "
        "exist, but tokens are never shown again; or a request with the same Idempotency-Key is "
        "still in progress (`Retry-After`)",
        retry_after=True,
        headers={REPLAYED: REPLAYED_HEADER},
    ),
    422: problem_doc(
        "Invalid body (an unknown stakeholder, expires_at in the past or over 180 days ahead), "
        "or an Idempotency-Key reused with another body"
    ),
}


def _tokens_shown(ids: list[uuid.UUID]) -> Conflict:
    named = ", ".join(str(i) for i in ids)
    return Conflict(
        f"this request already issued invitation(s) {named}; a token is shown only in the "
        "answer that issued it: revoke them (DELETE /v1/invitations/{id}) and issue new ones "
        "if the tokens were lost"
    )


@router.post(
    "/invitations",
    response_model=InvitationCreated,
    status_code=201,
    responses={
        200: {
            "model": InvitationCreated,
            "description": "A fatigue rule suppressed it: stored with `status: suppressed`, "
            "`suppression` saying which rule and until when, no token",
        },
        **REPLAY_DOC,
    },
    operation_id="create_invitation",
)
async def create_invitation(
    body: InvitationCreate,
    call: IdempotentWrite,
    config: AppSettingsDep,
) -> HttpResponse:
    """Issue an invitation (201, with its token and URL), or store it suppressed (200)."""
    now = utcnow()
    rules = (await load_settings(call.session, call.subject.workspace_id)).survey_rules
    created = await issuing.issue_invitation(
        call.session, call.subject.workspace_id, body, rules=rules, now=now
    )
    shown = invitation_created(created, now, config.public_base_url)
    if created.token is None:
        return call.idempotency.respond(shown, 200)
    return call.idempotency.respond(shown, 201, replay_as=_tokens_shown([shown.id]))


@router.post(
    "/invitations/batch",
    response_model=InvitationBatchResult,
    status_code=200,
    responses={
        207: {"model": InvitationBatchResult, "description": "Some items were refused"},
        413: problem_doc("More than 1,000 items or a body over 2 MB: nothing stored"),
        **REPLAY_DOC,
    },
    operation_id="create_invitations_batch",
)
async def create_invitations_batch(
    body: InvitationBatch,
    call: IdempotentWrite,
    config: AppSettingsDep,
) -> HttpResponse:
    """Issue up to 1,000 invitations in order: suppressed ones are results (200), not failures."""
    check_size(body.invitations, "invitations")
    now = utcnow()
    refused: dict[int, ItemOutcome[Any]] = {}
    valid = parse_items(InvitationCreate, body.invitations, "invitations", "invitation", refused)
    rules = (await load_settings(call.session, call.subject.workspace_id)).survey_rules
    outcomes = await issuing.issue_invitations(
        call.session,
        call.subject.workspace_id,
        valid,
        rules=rules,
        now=now,
        loc=("body", "invitations"),
    )
    result = batch_result({**refused, **outcomes}, now, config.public_base_url)
    tokens = [r.id for r in result.results if r.id is not None and r.status == 201]
    return call.idempotency.respond(
        result, 207 if result.failed else 200, replay_as=_tokens_shown(tokens) if tokens else None
    )


@router.get("/invitations", response_model=Page[InvitationRead], operation_id="list_invitations")
async def list_invitations(
    session: ReadSessionDep,
    auth: ReadAuth,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    updated_since: UpdatedSince = None,
    status: Annotated[
        InvitationStatus | None, Query(description="as read: expired includes lapsed open ones")
    ] = None,
    survey: Annotated[str | None, Query(pattern=SURVEY_ID_PATTERN)] = None,
    account_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    stakeholder_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    from_: Annotated[
        Timestamp | None, Query(alias="from", description="created at or after (RFC 3339)")
    ] = None,
    to: Annotated[Timestamp | None, Query(description="created before (RFC 3339)")] = None,
) -> Page[InvitationRead]:
    """List invitations (suppressed ones included) in (updated_at, id) order, with filters."""
    now = utcnow()
    rows, next_cursor = await invitations.list_invitations(
        session,
        auth.workspace_id,
        now=now,
        limit=limit,
        cursor=cursor,
        updated_since=updated_since,
        status=status,
        survey=survey,
        account_id=account_id,
        stakeholder_id=stakeholder_id,
        created_from=from_,
        created_to=to,
    )
    return Page(data=[invitation_read(r, now) for r in rows], next_cursor=next_cursor)


@router.get(
    "/invitations/{invitation_id}", response_model=InvitationRead, operation_id="get_invitation"
)
async def get_invitation(
    invitation_id: uuid.UUID, session: LookupSessionDep, auth: ReadAuth
) -> InvitationRead:
    """Read one invitation (never its token)."""
    found = await invitations.get_invitation(session, auth.workspace_id, invitation_id)
    return invitation_read(found, utcnow())


@router.delete(
    "/invitations/{invitation_id}",
    status_code=204,
    responses={409: problem_doc("The invitation was answered: exclude its response instead")},
    operation_id="revoke_invitation",
)
async def revoke_invitation(invitation_id: uuid.UUID, session: SessionDep, auth: WriteAuth) -> None:
    """Revoke an invitation: its token stops working at once (410). Twice is fine."""
    await invitations.revoke_invitation(session, auth.workspace_id, invitation_id)
