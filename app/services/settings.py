"""A workspace's settings, kept as JSON on the workspace row and read with every score."""

import uuid

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.industries import Range, effective_table
from app.models import Workspace
from app.schemas.settings import WorkspaceSettings


async def load_settings(session: AsyncSession, workspace_id: uuid.UUID) -> WorkspaceSettings:
    stored = await session.scalar(select(Workspace.settings).where(Workspace.id == workspace_id))
    try:
        return WorkspaceSettings.model_validate(stored or {})
    except ValidationError:
        # Only this service writes the column, through the same model; a row that no longer
        # validates (a hand edit) must not take the workspace's scores down with it.
        return WorkspaceSettings()


async def replace_settings(
    session: AsyncSession, workspace_id: uuid.UUID, settings: WorkspaceSettings
) -> WorkspaceSettings:
    await session.execute(
        update(Workspace)
        .where(Workspace.id == workspace_id)
        .values(settings=settings.model_dump(mode="json"))
    )
    return settings


def benchmark_table(settings: WorkspaceSettings) -> dict[str, Range]:
    return effective_table(
        {k: None if v is None else Range(v.low, v.high) for k, v in settings.benchmarks.items()}
    )
