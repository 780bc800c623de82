"""The public calls: made by the invited person with their invitation token, never an API key.

Each acts only on the token's own invitation.
"""

from fastapi import APIRouter

from app.api.auth import PublicAuth
from app.api.deps import utcnow
from app.db import SessionDep
from app.presenters.invitations import public_invitation
from app.schemas import problem_doc
from app.schemas.invitations import PublicInvitationRead
from app.services import invitations, surveys

router = APIRouter(prefix="/v1/public", tags=["public"])


@router.get(
    "/invitation",
    response_model=PublicInvitationRead,
    responses={
        401: problem_doc("Missing, unknown or malformed invitation token"),
        403: problem_doc("An API key: the public calls accept only an invitation token"),
        410: problem_doc("The invitation expired or was revoked"),
    },
    operation_id="get_public_invitation",
)
async def get_public_invitation(session: SessionDep, auth: PublicAuth) -> PublicInvitationRead:
    """What to show the invited person; marks an issued invitation opened."""
    now = utcnow()
    invitation, name, role = await invitations.open_invitation(
        session, auth.workspace_id, auth.invitation_id, now=now
    )
    definition = await surveys.find_definition(session, auth.workspace_id, invitation.survey)
    company = await surveys.company_name(session, auth.workspace_id)
    texts = surveys.texts_for(definition, role=role, locale=invitation.locale, company=company)
    return public_invitation(invitation, name, now, company=company, texts=texts)
