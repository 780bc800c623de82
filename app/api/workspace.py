"""The caller's own workspace (any scope)."""

from fastapi import APIRouter

from app.api.auth import AnySubject
from app.bodies import StrictRoute
from app.db import SessionDep
from app.presenters.workspace import current_workspace
from app.schemas.workspace import CurrentWorkspace
from app.services.keys import caller_key

router = APIRouter(prefix="/v1", tags=["workspace"], route_class=StrictRoute)


@router.get("/workspace", response_model=CurrentWorkspace, operation_id="get_workspace")
async def get_workspace(session: SessionDep, auth: AnySubject) -> CurrentWorkspace:
    """The workspace this request acts in, and the key it was sent with (any scope)."""
    return current_workspace(*await caller_key(session, auth.workspace_id, auth.key_id))
