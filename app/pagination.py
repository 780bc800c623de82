"""Opaque keyset cursors over (updated_at, id): stable while rows change, cheap at any depth."""

import base64
import json
import uuid
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, literal, tuple_
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import Unprocessable, field_error

M = TypeVar("M")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(updated_at: datetime, row_id: Any) -> str:
    raw = json.dumps([updated_at.isoformat(), str(row_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _not_ours() -> Unprocessable:
    return Unprocessable(
        "the cursor is not one this service issued",
        errors=[field_error(["query", "cursor"], "invalid cursor")],
    )


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None or not isinstance(row_id, str):
            raise ValueError("naive")
    except (ValueError, TypeError) as exc:
        raise _not_ours() from exc
    return moment, row_id


async def paginate(
    session: AsyncSession,
    query: Select[M],
    *,
    updated_col: InstrumentedAttribute[datetime],
    id_col: InstrumentedAttribute[Any],
    limit: int,
    cursor: str | None,
) -> tuple[list[M], str | None]:
    """One page of `query` in (updated_at, id) order and the cursor of the next one."""
    if cursor is not None:
        after_at, after_id = decode_cursor(cursor)
        key: Any = after_id
        if isinstance(id_col.type, UUID):
            try:
                key = uuid.UUID(after_id)
            except ValueError as exc:
                raise _not_ours() from exc
        query = query.where(tuple_(updated_col, id_col) > tuple_(literal(after_at), literal(key)))
    rows = list((await session.scalars(query.order_by(updated_col, id_col).limit(limit + 1))).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(getattr(last, updated_col.key), getattr(last, id_col.key))
