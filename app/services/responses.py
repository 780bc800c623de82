"""Recording, reading and excluding responses. Stored responses are immutable but for exclusion."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import (
    any_,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import (
    Conflict,
    NotFound,
    ProblemError,
    Unprocessable,
    field_error,
    validation_errors,
)
from app.models import Role, SurveyResponse
from app.pagination import paginate
from app.schemas import ResponseCreate
from app.scoring import Category
from app.services.chain import lock_chains, relink
from app.services.response_rows import insert_rows
from app.services.stakeholders import Snapshot, register_inline, stakeholders_by_id
from app.sql import is_category, text_array

MAX_FUTURE = timedelta(minutes=5)
MAX_BATCH = 1000

_item = TypeAdapter(ResponseCreate)


@dataclass(frozen=True, slots=True)
class Recorded:
    response: SurveyResponse
    created: bool


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    index: int
    status: int
    id: uuid.UUID | None = None
    duplicate: bool = False
    problem: dict[str, Any] | None = None


def _check_time(item: ResponseCreate, now: datetime, loc: tuple[str | int, ...]) -> None:
    if item.submitted_at is not None and item.submitted_at > now + MAX_FUTURE:
        raise Unprocessable(
            "submitted_at is more than 5 minutes in the future",
            errors=[field_error([*loc, "submitted_at"], "in the future")],
        )


def _unknown_stakeholder(stakeholder_id: str, loc: tuple[str | int, ...]) -> Unprocessable:
    return Unprocessable(
        f"stakeholder {stakeholder_id!r} does not exist; register it first "
        "or pass a `stakeholder` object to register it in the same call",
        errors=[field_error([*loc, "stakeholder_id"], "unknown stakeholder")],
    )


def _row(
    workspace_id: uuid.UUID, item: ResponseCreate, who: Snapshot, now: datetime
) -> dict[str, Any]:
    return {
        "workspace_id": workspace_id,
        "id": uuid.uuid4(),
        "external_id": item.external_id,
        "stakeholder_id": who.stakeholder_id,
        "account_id": who.account_id,
        "role": who.role,
        "job_level": who.job_level,
        "department": who.department,
        "score": item.score,
        "comment": item.comment,
        "submitted_at": item.submitted_at or now,
        "survey": item.survey,
        "channel": item.channel.value,
        "attributes": item.attributes,
    }


async def _by_external_ids(
    session: AsyncSession, workspace_id: uuid.UUID, external_ids: list[str]
) -> dict[str, SurveyResponse]:
    rows = await session.scalars(
        select(SurveyResponse).where(
            SurveyResponse.workspace_id == workspace_id,
            SurveyResponse.external_id == any_(text_array(external_ids)),
        )
    )
    return {r.external_id: r for r in rows if r.external_id is not None}


async def record_response(
    session: AsyncSession, workspace_id: uuid.UUID, item: ResponseCreate, *, now: datetime
) -> Recorded:
    """Store one response; an external_id already stored returns that response instead."""
    loc: tuple[str | int, ...] = ("body",)
    _check_time(item, now, loc)
    if item.stakeholder is not None:
        [registered] = await register_inline(
            session, workspace_id, [((*loc, "stakeholder"), item.stakeholder)]
        )
        if isinstance(registered, ProblemError):
            raise registered
        who = registered
    else:
        found = await stakeholders_by_id(session, workspace_id, {item.stakeholder_key})
        if item.stakeholder_key not in found:
            raise _unknown_stakeholder(item.stakeholder_key, loc)
        who = Snapshot.of(found[item.stakeholder_key])
    row = _row(workspace_id, item, who, now)
    inserted = await insert_rows(session, [row])
    await relink(
        session, workspace_id, {row["stakeholder_id"]: row["submitted_at"]} if inserted else {}
    )
    if not inserted:
        assert item.external_id is not None
        existing = await _by_external_ids(session, workspace_id, [item.external_id])
        if item.external_id not in existing:
            raise _vanished(item.external_id)
        return Recorded(existing[item.external_id], created=False)
    # As stored, without reading it back: the row is exactly what was sent plus its stamps.
    recorded_at = inserted[row["id"]]
    stored = SurveyResponse(
        **row, excluded=False, excluded_reason=None, created_at=recorded_at, updated_at=recorded_at
    )
    return Recorded(stored, created=True)


async def record_batch(
    session: AsyncSession, workspace_id: uuid.UUID, items: list[Any], *, now: datetime
) -> list[BatchOutcome]:
    """Store every valid item in one statement and report each item by index.

    Invalid items are reported, valid ones stored; an external_id seen before (in the database
    or earlier in this batch) is reported as a duplicate with the stored id, never stored twice.
    """
    outcomes: dict[int, BatchOutcome] = {}
    valid: list[tuple[int, ResponseCreate]] = []
    for index, raw in enumerate(items):
        loc: tuple[str | int, ...] = ("body", "responses", index)
        try:
            item = _item.validate_python(raw)
            _check_time(item, now, loc)
        except ValidationError as exc:
            errors = [
                field_error([*loc, *e["loc"]], e["msg"]) for e in validation_errors(exc.errors())
            ]
            outcomes[index] = _failed(index, Unprocessable("invalid response", errors=errors))
            continue
        except ProblemError as exc:
            outcomes[index] = _failed(index, exc)
            continue
        valid.append((index, item))

    inline = [(index, item.stakeholder) for index, item in valid if item.stakeholder is not None]
    registered = await register_inline(
        session,
        workspace_id,
        [(("body", "responses", index, "stakeholder"), who) for index, who in inline],
    )
    as_given: dict[int, Snapshot] = {}
    for (index, _), result in zip(inline, registered, strict=True):
        if isinstance(result, ProblemError):
            outcomes[index] = _failed(index, result)
        else:
            as_given[index] = result
    # Named by id only: the stakeholder as registered, after this batch's own registrations.
    stakeholders = await stakeholders_by_id(
        session, workspace_id, {i.stakeholder_key for _, i in valid if i.stakeholder is None}
    )

    rows: list[dict[str, Any]] = []
    row_index: dict[int, uuid.UUID] = {}
    first_with_external: dict[str, int] = {}
    for index, item in valid:
        if index in outcomes:
            continue
        known = stakeholders.get(item.stakeholder_key)
        given = as_given.get(index) or (Snapshot.of(known) if known is not None else None)
        if given is None:
            outcomes[index] = _failed(
                index, _unknown_stakeholder(item.stakeholder_key, ("body", "responses", index))
            )
            continue
        if item.external_id is not None:
            if item.external_id in first_with_external:
                continue  # resolved below, once the first one's fate is known
            first_with_external[item.external_id] = index
        row = _row(workspace_id, item, given, now)
        rows.append(row)
        row_index[index] = row["id"]

    inserted = await insert_rows(session, rows) if rows else {}
    earliest: dict[str, datetime] = {}
    for row in rows:
        if row["id"] in inserted:
            who, when = row["stakeholder_id"], row["submitted_at"]
            earliest[who] = min(when, earliest.get(who, when))
    await relink(session, workspace_id, earliest)
    lost = [ext for ext, index in first_with_external.items() if row_index[index] not in inserted]
    existing = await _by_external_ids(session, workspace_id, lost) if lost else {}
    for index, item in valid:
        if index in outcomes:
            continue
        ext = item.external_id
        first = first_with_external.get(ext) if ext is not None else index
        stored_id = row_index[first] if first is not None and row_index[first] in inserted else None
        if stored_id is None and ext is not None and ext in existing:
            stored_id = existing[ext].id
        if stored_id is None:
            assert ext is not None
            outcomes[index] = _failed(index, _vanished(ext))
        elif first == index and stored_id == row_index[index]:
            outcomes[index] = BatchOutcome(index, 201, id=stored_id)
        else:
            outcomes[index] = BatchOutcome(index, 200, id=stored_id, duplicate=True)
    return [outcomes[i] for i in range(len(items))]


def _vanished(external_id: str) -> Conflict:
    # The stored response with this external_id was deleted between our insert and our read.
    return Conflict(
        f"the response with external_id {external_id!r} changed while this one was stored; retry",
        headers={"Retry-After": "1"},
    )


def _failed(index: int, error: ProblemError) -> BatchOutcome:
    return BatchOutcome(index, error.status, problem=error.body())


async def get_response(
    session: AsyncSession, workspace_id: uuid.UUID, response_id: uuid.UUID
) -> SurveyResponse:
    response = await session.get(
        SurveyResponse, (workspace_id, response_id), populate_existing=True
    )
    if response is None:
        raise NotFound(f"response {response_id} does not exist")
    return response


async def list_responses(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None = None,
    updated_since: datetime | None = None,
    account_id: str | None = None,
    stakeholder_id: str | None = None,
    role: Role | None = None,
    category: Category | None = None,
    submitted_from: datetime | None = None,
    submitted_to: datetime | None = None,
    excluded: bool | None = None,
) -> tuple[list[SurveyResponse], str | None]:
    query = select(SurveyResponse).where(SurveyResponse.workspace_id == workspace_id)
    if updated_since is not None:
        query = query.where(SurveyResponse.updated_at >= updated_since)
    if account_id is not None:
        query = query.where(SurveyResponse.account_id == account_id)
    if stakeholder_id is not None:
        query = query.where(SurveyResponse.stakeholder_id == stakeholder_id)
    if role is not None:
        query = query.where(SurveyResponse.role == role.value)
    if category is not None:
        query = query.where(is_category(SurveyResponse.score, category))
    if submitted_from is not None:
        query = query.where(SurveyResponse.submitted_at >= submitted_from)
    if submitted_to is not None:
        query = query.where(SurveyResponse.submitted_at < submitted_to)
    if excluded is not None:
        query = query.where(SurveyResponse.excluded.is_(excluded))
    return await paginate(
        session,
        query,
        updated_col=SurveyResponse.updated_at,
        id_col=SurveyResponse.id,
        limit=limit,
        cursor=cursor,
    )


async def set_exclusion(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    response_id: uuid.UUID,
    *,
    excluded: bool,
    reason: str | None,
) -> SurveyResponse:
    """Exclude a response from every score (with a reason) or include it again."""
    owner = await session.scalar(
        select(SurveyResponse.stakeholder_id).where(
            SurveyResponse.workspace_id == workspace_id, SurveyResponse.id == response_id
        )
    )
    if owner is None:
        raise NotFound(f"response {response_id} does not exist")
    await lock_chains(session, workspace_id, [owner])
    changed = (
        await session.execute(
            update(SurveyResponse)
            .where(SurveyResponse.workspace_id == workspace_id, SurveyResponse.id == response_id)
            .values(excluded=excluded, excluded_reason=reason, updated_at=func.now())
            .returning(SurveyResponse.stakeholder_id, SurveyResponse.submitted_at)
        )
    ).first()
    if changed is None:
        raise NotFound(f"response {response_id} does not exist")
    # Leaving or rejoining the chain relinks the answer before it.
    await relink(session, workspace_id, {changed.stakeholder_id: changed.submitted_at})
    return await get_response(session, workspace_id, response_id)
