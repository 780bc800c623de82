"""The workspace's settings: weights, thresholds, defaults and benchmarks (admin scope)."""

from typing import Annotated

from fastapi import APIRouter, Depends

from app.api.auth import AdminAuth, ReadAuth
from app.db import ReadSessionDep, SessionDep
from app.presenters.settings import settings_read
from app.schemas.settings import SettingsRead, WorkspaceSettings
from app.services.settings import load_settings, replace_settings

router = APIRouter(prefix="/v1", tags=["settings"])


async def current_settings(session: ReadSessionDep, auth: ReadAuth) -> WorkspaceSettings:
    return await load_settings(session, auth.workspace_id)


WorkspaceSettingsDep = Annotated[WorkspaceSettings, Depends(current_settings)]


@router.get("/settings", response_model=SettingsRead, operation_id="get_settings")
async def get_settings(session: SessionDep, auth: AdminAuth) -> SettingsRead:
    """The settings in effect for this workspace."""
    return settings_read(await load_settings(session, auth.workspace_id))


@router.put("/settings", response_model=SettingsRead, operation_id="replace_settings")
async def put_settings(
    body: WorkspaceSettings, session: SessionDep, auth: AdminAuth
) -> SettingsRead:
    """Replace the settings; an absent field takes its default. Stored responses never change."""
    return settings_read(await replace_settings(session, auth.workspace_id, body))
