"""The workspace's data version: what a report's ETag changes with (migration 0019)."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import DataVersion


async def data_version(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    """The sum of the workspace's shards: larger in any snapshot that sees one more committed
    write a score can depend on; 0 before the first."""
    total = await session.scalar(
        select(func.coalesce(func.sum(DataVersion.version), 0)).where(
            DataVersion.workspace_id == workspace_id
        )
    )
    return int(total or 0)
