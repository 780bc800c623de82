"""Opaque keyset cursors over (updated_at, id): stable while rows change, cheap at any depth."""

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, literal, tuple_
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import Unprocessable, invalid_query

M = TypeVar("M")
K = TypeVar("K")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_key(values: Sequence[Any]) -> str:
    """An opaque cursor holding a sort key (JSON values)."""
    raw = json.dumps(list(values), separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def invalid_cursor() -> Unprocessable:
    return invalid_query("cursor", "the cursor is not one this service issued", "invalid cursor")


def decode_key(cursor: str, parse: Callable[[list[Any]], K]) -> K:
    """The sort key of a cursor from `encode_key`, through `parse`; any failure is a 422."""
    try:
        values = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        if not isinstance(values, list):
            raise TypeError(values)
        return parse(values)
    # RecursionError: a cursor of JSON arrays nested thousands deep.
    except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
        raise invalid_cursor() from exc


def aware(stamp: Any) -> datetime:
    """An ISO instant with an offset, as cursors store them."""
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        raise ValueError("naive")
    return moment


def encode_cursor(updated_at: datetime, row_id: Any) -> str:
    return encode_key([updated_at.isoformat(), str(row_id)])


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    def parse(values: list[Any]) -> tuple[datetime, str]:
        stamp, row_id = values
        if not isinstance(row_id, str):
            raise TypeError(row_id)
        return aware(stamp), row_id

    return decode_key(cursor, parse)


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
                raise invalid_cursor() from exc
        query = query.where(tuple_(updated_col, id_col) > tuple_(literal(after_at), literal(key)))
    rows = list((await session.scalars(query.order_by(updated_col, id_col).limit(limit + 1))).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(getattr(last, updated_col.key), getattr(last, id_col.key))
