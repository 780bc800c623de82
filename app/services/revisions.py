"""Reading a response's revisions: 1 is the response as recorded, then each correction.

A correction row keeps only what it changed ({field: {"from", "to"}}), so the values as recorded
are the current row with each field's first `from` put back, and each later revision's values
follow by applying its `to`s in order.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import rfc3339
from app.models import ResponseRevision, SurveyResponse
from app.pagination import decode_key, encode_key
from app.services.responses import get_response

# The fields a correction (or an exclusion) may change, in the order they are shown.
CORRECTABLE = ("score", "comment", "attributes", "submitted_at", "excluded", "excluded_reason")


def to_wire(field: str, value: Any) -> Any:
    """A field's value as kept in a revision's JSON: instants as RFC 3339 in UTC."""
    if field == "submitted_at":
        assert isinstance(value, datetime)
        return rfc3339(value)
    return value


def from_wire(field: str, value: Any) -> Any:
    return datetime.fromisoformat(value) if field == "submitted_at" else value


def current_values(response: SurveyResponse) -> dict[str, Any]:
    return {field: to_wire(field, getattr(response, field)) for field in CORRECTABLE}


def _as_recorded(current: dict[str, Any], revisions: Sequence[ResponseRevision]) -> dict[str, Any]:
    values = dict(current)
    seen: set[str] = set()
    for revision in revisions:
        for field, change in revision.changes.items():
            if field not in seen:
                seen.add(field)
                values[field] = change["from"]
    return values


@dataclass(frozen=True, slots=True)
class Revision:
    revision: int
    changed_at: datetime
    changed_by: str | None
    changes: dict[str, Any]
    values: dict[str, Any]


async def _revisions_of(
    session: AsyncSession, workspace_id: uuid.UUID, response_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ResponseRevision]]:
    rows = await session.scalars(
        select(ResponseRevision)
        .where(
            ResponseRevision.workspace_id == workspace_id,
            ResponseRevision.response_id.in_(response_ids),
        )
        .order_by(ResponseRevision.response_id, ResponseRevision.revision)
    )
    found: dict[uuid.UUID, list[ResponseRevision]] = {}
    for row in rows:
        found.setdefault(row.response_id, []).append(row)
    return found


async def list_revisions(
    session: AsyncSession, workspace_id: uuid.UUID, response_id: uuid.UUID
) -> list[Revision]:
    """Every revision of a response, oldest first, each with the values it left."""
    response = await get_response(session, workspace_id, response_id)
    corrections = (await _revisions_of(session, workspace_id, [response_id])).get(response_id, [])
    values = _as_recorded(current_values(response), corrections)
    out = [Revision(1, response.created_at, None, {}, values)]
    for correction in corrections:
        values = values | {field: c["to"] for field, c in correction.changes.items()}
        out.append(
            Revision(
                correction.revision,
                correction.changed_at,
                correction.changed_by,
                correction.changes,
                values,
            )
        )
    return out


async def recorded_values(
    session: AsyncSession, workspace_id: uuid.UUID, responses: Sequence[SurveyResponse]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The correctable fields of each corrected response as first recorded (Python values);
    a response never corrected is left out (its current values are its recorded ones)."""
    if not responses:
        return {}
    found = await _revisions_of(session, workspace_id, [r.id for r in responses])
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for response in responses:
        if response.id in found:
            wire = _as_recorded(current_values(response), found[response.id])
            out[response.id] = {field: from_wire(field, value) for field, value in wire.items()}
    return out


async def revision_page(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    response_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[Revision], str | None]:
    """A page of revisions in order; the cursor holds the last revision number shown. Each
    page is built from the whole history, since a revision's values follow from the ones
    before it (a response has a handful)."""
    after = 0 if cursor is None else decode_key(cursor, _revision_number)
    remaining = [
        r for r in await list_revisions(session, workspace_id, response_id) if r.revision > after
    ]
    page = remaining[:limit]
    more = len(remaining) > limit
    return page, encode_key([page[-1].revision]) if more else None


def _revision_number(values: list[Any]) -> int:
    [number] = values
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise ValueError(number)
    return number
