"""Tombstones of deleted accounts, stakeholders and responses, for deletions sync.

Triggers write them (migration 0005) in the transaction of the delete, whichever statement or
foreign-key cascade removed the row. They are listed in (deleted_at, seq) order and purged by a
periodic job once older than NPS_DELETION_RETENTION_DAYS.
"""

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import each_workspace
from app.errors import ResyncRequired, field_error
from app.jobs import JobContext, task
from app.models import Deletion, DeletionKind
from app.pagination import aware, decode_key, encode_key


def _encode(row: Deletion) -> str:
    return encode_key([row.deleted_at.isoformat(), row.seq])


def _decode(cursor: str) -> tuple[datetime, int]:
    def parse(values: list[Any]) -> tuple[datetime, int]:
        stamp, seq = values
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise TypeError(seq)
        return aware(stamp), seq

    return decode_key(cursor, parse)


async def list_deletions(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    retention_days: int,
    limit: int,
    cursor: str | None = None,
    since: datetime | None = None,
    kind: DeletionKind | None = None,
) -> tuple[list[Deletion], str | None]:
    """One page of the workspace's tombstones at or after `since`, in (deleted_at, seq) order.

    A client that asks to resume from before the retention horizon (by `since`, or by a cursor
    it kept too long) could miss a purged tombstone: that is refused with 410, never answered
    with a page that silently lacks it.
    """
    after = None if cursor is None else _decode(cursor)
    bounds = [(since, "since"), (None if after is None else after[0], "cursor")]
    given = [(moment, param) for moment, param in bounds if moment is not None]
    if given:
        bound, param = max(given, key=lambda b: b[0])
        # The database's clock, which deleted_at and the purge use too.
        now = (await session.execute(select(func.now()))).scalar_one()
        horizon = now - timedelta(days=retention_days)
        if bound < horizon:
            raise ResyncRequired(
                f"tombstones are kept {retention_days} days, so ones deleted before "
                f"{horizon.isoformat()} may be gone: do a full resync, then sync deletions "
                "from the time it started",
                errors=[field_error(["query", param], "before the retention horizon")],
            )
    query = select(Deletion).where(Deletion.workspace_id == workspace_id)
    if since is not None:
        query = query.where(Deletion.deleted_at >= since)
    if kind is not None:
        query = query.where(Deletion.kind == kind.value)
    if after is not None:
        query = query.where(
            tuple_(Deletion.deleted_at, Deletion.seq) > tuple_(literal(after[0]), literal(after[1]))
        )
    query = query.order_by(Deletion.deleted_at, Deletion.seq).limit(limit + 1)
    rows = list((await session.scalars(query)).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, _encode(rows[-1])


async def purge_expired(session: AsyncSession, *, days: int) -> int:
    """Delete the tombstones older than `days`, in every workspace; how many went."""
    cutoff = func.now() - timedelta(days=days)
    gone = 0
    async for workspace_id in each_workspace(session):
        result = await session.execute(
            delete(Deletion).where(
                Deletion.workspace_id == workspace_id, Deletion.deleted_at < cutoff
            )
        )
        gone += int(result.rowcount)  # type: ignore[attr-defined]
    return gone


@task("deletions.purge", every=timedelta(hours=1))
async def purge_expired_tombstones(ctx: JobContext) -> None:
    await purge_expired(ctx.session, days=ctx.settings.deletion_retention_days)
