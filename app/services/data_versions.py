"""The workspace's data version: what a report's ETag changes with (migration 0019)."""

import uuid

from sqlalchemy import Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DataVersion, Workspace


async def data_version(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    """The sum of the workspace's shards: larger in any snapshot that sees one more committed
    write a score can depend on; 0 before the first."""
    total = await session.scalar(
        select(func.coalesce(func.sum(DataVersion.version), 0)).where(
            DataVersion.workspace_id == workspace_id
        )
    )
    return int(total or 0)


async def report_state(session: AsyncSession, workspace_id: uuid.UUID) -> tuple[int, str]:
    """The data version and the settings as stored (their JSON text), in one statement: what a
    report's ETag is derived from besides the query (app.api.report_tags)."""
    version = (
        select(func.coalesce(func.sum(DataVersion.version), 0))
        .where(DataVersion.workspace_id == workspace_id)
        .scalar_subquery()
    )
    row = (
        await session.execute(
            select(version, cast(Workspace.settings, Text)).where(Workspace.id == workspace_id)
        )
    ).one()
    return int(row[0]), str(row[1])
