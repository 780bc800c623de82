"""The workspace's data version: what a report's ETag changes with (migration 0019)."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import driver
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


# On the driver (app.db.driver): every poll of a dashboard runs it.
_REPORT_STATE = """
    SELECT (SELECT coalesce(sum(version), 0)::bigint FROM data_versions WHERE workspace_id = $1),
        settings::text
    FROM workspaces WHERE id = $1
"""


async def report_state(session: AsyncSession, workspace_id: uuid.UUID) -> tuple[int, str]:
    """The data version and the settings as stored (their JSON text), in one statement: what a
    report's ETag is derived from besides the query (app.api.report_tags)."""
    row = await (await driver(session)).fetchrow(_REPORT_STATE, workspace_id)
    return int(row[0]), str(row[1])
