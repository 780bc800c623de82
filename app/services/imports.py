"""Import jobs: an upload stored in PostgreSQL as it arrives, a job for the worker, its progress,
its rejected rows, its cancel.

Where the file waits: in `import_chunks`, 1 MiB of the upload a row, written while the body
streams in (never held whole in memory) in the request's transaction, so the job and the file
commit together or not at all; the worker reads them back in order (app.services.import_runs)
and deletes them when the import ends. PostgreSQL stays the only state: any web process takes
an upload, any worker runs it.

The same file twice: an upload whose SHA-256 (with the same kind, preset and mapping) matches
an import that is queued, running or succeeded is recorded as a duplicate of it and stores
nothing; its answer names the earlier import.
"""

import hashlib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from app.db import driver
from app.errors import Conflict, NotFound, PayloadTooLarge, Unprocessable, field_error
from app.jobs import enqueue
from app.models import (
    Import,
    ImportChunk,
    ImportFormat,
    ImportKind,
    ImportRowError,
    ImportStatus,
)
from app.pagination import decode_key, encode_key

CHUNK_BYTES = 1 << 20
RUN_TASK = "imports.run"
LIVE = (ImportStatus.QUEUED.value, ImportStatus.RUNNING.value)
FINISHED = (ImportStatus.SUCCEEDED.value, ImportStatus.FAILED.value, ImportStatus.CANCELLED.value)

_CHUNK = "INSERT INTO import_chunks (workspace_id, import_id, seq, data) VALUES ($1, $2, $3, $4)"


async def create_import(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    body: AsyncIterator[bytes],
    *,
    kind: ImportKind,
    fmt: ImportFormat,
    preset: str | None,
    mapping: Mapping[str, str | None],
    file_name: str | None,
    max_bytes: int,
    queue: bool = True,
) -> Import:
    """Store the upload chunk by chunk and queue its job (or, for a file imported before,
    record it as a duplicate that stores nothing); `queue=False` when the caller runs it
    itself (`nps import`). Never commits."""
    job = Import(
        workspace_id=workspace_id,
        id=uuid.uuid4(),
        kind=kind.value,
        format=fmt.value,
        status=ImportStatus.QUEUED.value,
        preset=preset,
        mapping=dict(mapping),
        file_name=file_name,
        sha256=b"",
        size_bytes=0,
    )
    session.add(job)
    await session.flush()
    digest = hashlib.sha256()
    size = 0
    seq = 0
    buffer = bytearray()
    conn = await driver(session)
    async for piece in body:
        size += len(piece)
        if size > max_bytes:
            raise PayloadTooLarge(
                f"an import file holds at most {max_bytes} bytes (NPS_IMPORT_MAX_BYTES); "
                "nothing was stored"
            )
        digest.update(piece)
        buffer += piece
        while len(buffer) >= CHUNK_BYTES:
            await conn.execute(_CHUNK, workspace_id, job.id, seq, bytes(buffer[:CHUNK_BYTES]))
            del buffer[:CHUNK_BYTES]
            seq += 1
    if buffer:
        await conn.execute(_CHUNK, workspace_id, job.id, seq, bytes(buffer))
    if size == 0:
        raise Unprocessable(
            "the file is empty", errors=[field_error(["body"], "an import needs a file")]
        )
    job.sha256, job.size_bytes = digest.digest(), size
    earlier = await _same_file(session, job)
    if earlier is not None:
        job.duplicate_of = earlier
        job.status = ImportStatus.SUCCEEDED.value
        await session.execute(
            delete(ImportChunk).where(
                ImportChunk.workspace_id == workspace_id, ImportChunk.import_id == job.id
            )
        )
    await session.flush()
    if earlier is None and queue:
        await enqueue(session, RUN_TASK, {"import_id": str(job.id)}, workspace_id=workspace_id)
    await session.refresh(job)
    return job


async def _same_file(session: AsyncSession, job: Import) -> uuid.UUID | None:
    """An earlier import of the same bytes, kind, preset and mapping that did not fail."""
    found: uuid.UUID | None = await session.scalar(
        select(Import.id)
        .where(
            Import.workspace_id == job.workspace_id,
            Import.sha256 == job.sha256,
            Import.id != job.id,
            Import.kind == job.kind,
            Import.preset.is_not_distinct_from(job.preset),
            Import.mapping == job.mapping,
            Import.duplicate_of.is_(None),
            Import.status.in_([*LIVE, ImportStatus.SUCCEEDED.value]),
        )
        .order_by(Import.created_at)
        .limit(1)
    )
    return found


async def get_import(
    session: AsyncSession, workspace_id: uuid.UUID, import_id: uuid.UUID
) -> Import:
    found = await session.scalar(
        select(Import).where(Import.workspace_id == workspace_id, Import.id == import_id)
    )
    if found is None:
        raise NotFound(f"import {import_id} does not exist")
    return found


async def cancel_import(
    session: AsyncSession, workspace_id: uuid.UUID, import_id: uuid.UUID
) -> Import:
    """Cancel a queued or running import. A running one stops before its next chunk (each
    chunk of rows is one transaction: those merged stay, nothing half-merged is left); a
    finished one is a 409."""
    job = await get_import(session, workspace_id, import_id)
    changed = await session.scalar(
        update(Import)
        .where(Import.workspace_id == workspace_id, Import.id == import_id, Import.status.in_(LIVE))
        .values(status=ImportStatus.CANCELLED.value, finished_at=func.now(), updated_at=func.now())
        .returning(Import.status)
    )
    if changed is None:
        await session.refresh(job)
        raise Conflict(f"import {import_id} has {job.status} already: there is nothing to cancel")
    await session.refresh(job)
    if job.started_at is None:  # the worker has not opened it: nothing will read the file now
        await session.execute(
            delete(ImportChunk).where(
                ImportChunk.workspace_id == workspace_id, ImportChunk.import_id == import_id
            )
        )
    return job


def progress_of(job: Import, now: datetime) -> tuple[float, float | None]:
    """How far the worker has read the file (0-1), and the seconds it should still take at
    the pace so far (None until it has read something, and once it has finished)."""
    if job.status in FINISHED:
        return (1.0 if job.status == ImportStatus.SUCCEEDED.value else _share(job)), None
    share = _share(job)
    if job.started_at is None or share <= 0:
        return share, None
    elapsed = max((now - job.started_at).total_seconds(), 0.0)
    return share, round(elapsed * (1 - share) / share, 1)


def _share(job: Import) -> float:
    return 0.0 if job.size_bytes <= 0 else min(job.bytes_read / job.size_bytes, 1.0)


async def error_page(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    import_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[ImportRowError], str | None]:
    """The import's rejected rows in row order, a page at a time."""
    await get_import(session, workspace_id, import_id)
    query = select(ImportRowError).where(
        ImportRowError.workspace_id == workspace_id, ImportRowError.import_id == import_id
    )
    if cursor is not None:
        row, seq = decode_key(cursor, _parse_cursor)
        query = query.where(
            or_(
                ImportRowError.row_number > row,
                (ImportRowError.row_number == row) & (ImportRowError.seq > seq),
            )
        )
    rows = list(
        (
            await session.scalars(
                query.order_by(ImportRowError.row_number, ImportRowError.seq).limit(limit + 1)
            )
        ).all()
    )
    following = None
    if len(rows) > limit:
        rows = rows[:limit]
        following = encode_key([rows[-1].row_number, rows[-1].seq])
    return rows, following


def _parse_cursor(values: list[Any]) -> tuple[int, int]:
    row, seq = values
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (row, seq)):
        raise TypeError(values)
    return row, seq


async def forget_rows(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    stakeholder_ids: Sequence[str] = (),
    account_id: str | None = None,
    emails: Sequence[str] = (),
) -> None:
    """Erasure: the rejected rows that copy these people's (or this account's) data."""
    conditions: list[ColumnElement[bool]] = []
    if stakeholder_ids:
        conditions.append(ImportRowError.stakeholder_id.in_(list(stakeholder_ids)))
        # A stakeholder id may be the person's email, and a row may name them only by it.
        conditions.append(ImportRowError.email.in_(list(stakeholder_ids)))
    if emails:
        conditions.append(ImportRowError.email.in_([e for e in emails if e]))
    if account_id is not None:
        conditions.append(ImportRowError.account_id == account_id)
    # A row that could not be read names nobody in its columns: its raw text still may.
    for named in (*stakeholder_ids, *emails, *([account_id] if account_id else [])):
        if named:
            conditions.append(func.strpos(ImportRowError.raw, named) > 0)
    if conditions:
        await session.execute(
            delete(ImportRowError).where(
                ImportRowError.workspace_id == workspace_id, or_(*conditions)
            )
        )
