"""Recording responses, one or a batch: validated, stakeholders resolved (or registered inline),
stored in one statement, chains relinked, and each item's outcome reported.

A retry never double-counts: an external_id already stored (or earlier in the same batch) is
never stored twice. Sent again with the same content it is reported as a duplicate with the
stored id; with other content it is a 409 naming the stored response (a change is a PATCH).

What "the same content" means is app.services.repeats.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import (
    any_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import driver
from app.errors import (
    Conflict,
    ProblemError,
    Unprocessable,
    field_error,
    validation_errors,
)
from app.models import SurveyResponse
from app.schemas import ResponseCreate
from app.services import events
from app.services.chain import lock_sql, relink
from app.services.repeats import differing_fields, judge_repeats, repeat_conflict
from app.services.response_rows import Companion, insert_rows, store_one
from app.services.stakeholders import Snapshot, register_inline, stakeholders_by_id
from app.services.surveys import catalog_problem, definitions, parse_definition
from app.sql import text_array

MAX_FUTURE = timedelta(minutes=5)

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


# What recording one answer needs to know, in one round trip on the driver (app.db.driver):
# who the stakeholder is ($2; null when registered inline), the response already stored with
# the external_id ($3), and the survey's definition when ratings are to be checked ($4). It
# takes the chain lock of the stakeholder ($5) as well, so the statement that then stores and
# links the answer (response_rows.store_one) sees every answer committed before the lock was
# granted.
_FACTS = f"""
    SELECT s.id, s.account_id, s.role, s.job_level, s.department,
           (SELECT r.id FROM responses AS r
            WHERE r.workspace_id = $1 AND r.external_id = $3) AS stored_id,
           (SELECT v.definition FROM surveys AS v
            WHERE v.workspace_id = $1 AND v.id = $4) AS definition,
           {lock_sql("$1::text", "$5::text")} AS locked
    FROM (SELECT 1) AS one
    LEFT JOIN stakeholders AS s ON s.workspace_id = $1 AND s.id = $2
"""


async def record_response(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    item: ResponseCreate,
    *,
    now: datetime,
    announce: Sequence[tuple[str, Mapping[str, Any]]] = (),
    companions: Sequence[Companion] = (),
) -> Recorded:
    """Store one response; an external_id already stored returns that response when the
    content is the same and is a 409 naming it when not.

    A stored response emits `response.created`, and each `announce` event (its data merged
    over the response's), and makes the `companions`' writes, in the same statement; a repeat
    emits and writes nothing (CompanionRefused when a companion could not write)."""
    loc: tuple[str | int, ...] = ("body",)
    _check_time(item, now, loc)
    checked_survey = item.survey if item.attributes else None
    facts = await (await driver(session)).fetchrow(
        _FACTS,
        workspace_id,
        None if item.stakeholder is not None else item.stakeholder_key,
        item.external_id,
        checked_survey,
        item.stakeholder_key,
    )
    if facts["stored_id"] is not None:
        # Before any inline registration, so a refused repeat changes nothing.
        assert item.external_id is not None
        known = await _by_external_ids(session, workspace_id, [item.external_id])
        if item.external_id in known:
            return await _repeat(session, workspace_id, item, known[item.external_id], loc)
    if checked_survey is not None and facts["definition"] is not None:
        # Before any inline registration, so a refused answer writes nothing.
        problem = catalog_problem(item.attributes, parse_definition(facts["definition"]), loc)
        if problem is not None:
            raise problem
    if item.stakeholder is not None:
        [registered] = await register_inline(
            session, workspace_id, [((*loc, "stakeholder"), item.stakeholder)]
        )
        if isinstance(registered, ProblemError):
            raise registered
        who = registered
    elif facts["id"] is None:
        raise _unknown_stakeholder(item.stakeholder_key, loc)
    else:
        who = Snapshot(
            facts["id"], facts["account_id"], facts["role"], facts["job_level"], facts["department"]
        )
    row = _row(workspace_id, item, who, now)
    data = events.response_data(row)
    announced = [
        ("response.created", data),
        *((kind, {**data, **extra}) for kind, extra in announce),
    ]
    recorded_at = await store_one(session, row, announced, companions)
    if recorded_at is None:
        # Stored by a concurrent request since we looked.
        assert item.external_id is not None
        existing = await _by_external_ids(session, workspace_id, [item.external_id])
        if item.external_id not in existing:
            raise _vanished(item.external_id)
        return await _repeat(session, workspace_id, item, existing[item.external_id], loc)
    # As stored, without reading it back: the row is exactly what was sent plus its stamps.
    stored = SurveyResponse(
        **row, excluded=False, excluded_reason=None, created_at=recorded_at, updated_at=recorded_at
    )
    return Recorded(stored, created=True)


async def _repeat(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    item: ResponseCreate,
    stored: SurveyResponse,
    loc: tuple[str | int, ...],
) -> Recorded:
    [conflict] = await judge_repeats(session, workspace_id, [(item, stored, loc)])
    if conflict is not None:
        raise conflict
    return Recorded(stored, created=False)


async def record_batch(
    session: AsyncSession, workspace_id: uuid.UUID, items: list[Any], *, now: datetime
) -> list[BatchOutcome]:
    """Store every valid item in one statement and report each item by index.

    Invalid items are reported, valid ones stored; an external_id seen before (in the database
    or earlier in this batch) is never stored twice: reported as a duplicate with the stored id
    when the content is the same, as a 409 naming the stored response when not.
    """
    outcomes: dict[int, BatchOutcome] = {}
    valid = _validate(items, now, outcomes)
    await _match_stored(session, workspace_id, valid, outcomes)
    await _check_catalogs(session, workspace_id, valid, outcomes)
    who = await _resolve_firsts(session, workspace_id, valid, outcomes)
    planned = _plan_rows(workspace_id, valid, who, now, outcomes)
    inserted = await _store(session, workspace_id, planned.rows)
    await _report(session, workspace_id, valid, planned, inserted, outcomes)
    return [outcomes[i] for i in range(len(items))]


Valid = list[tuple[int, ResponseCreate]]


def _validate(items: list[Any], now: datetime, outcomes: dict[int, BatchOutcome]) -> Valid:
    """Phase 1: each item parsed on its own, so one bad item fails alone."""
    valid: Valid = []
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
    return valid


async def _match_stored(
    session: AsyncSession, workspace_id: uuid.UUID, valid: Valid, outcomes: dict[int, BatchOutcome]
) -> None:
    """Phase 2: items repeating an external_id stored before, settled before anything is
    written for them (so a refused repeat registers no inline stakeholder either)."""
    wanted = [item.external_id for _, item in valid if item.external_id is not None]
    known = await _by_external_ids(session, workspace_id, wanted) if wanted else {}
    repeats = [
        (index, item, known[item.external_id])
        for index, item in valid
        if item.external_id is not None and item.external_id in known
    ]
    await _settle_repeats(session, workspace_id, repeats, outcomes)


async def _settle_repeats(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    repeats: Sequence[tuple[int, ResponseCreate, SurveyResponse]],
    outcomes: dict[int, BatchOutcome],
) -> None:
    """Items repeating a stored response's external_id: 200 duplicate or 409, by content."""
    judged = await judge_repeats(
        session,
        workspace_id,
        [(item, stored, ("body", "responses", index)) for index, item, stored in repeats],
    )
    for (index, _, stored), conflict in zip(repeats, judged, strict=True):
        outcomes[index] = (
            _failed(index, conflict)
            if conflict is not None
            else BatchOutcome(index, 200, id=stored.id, duplicate=True)
        )


async def _check_catalogs(
    session: AsyncSession, workspace_id: uuid.UUID, valid: Valid, outcomes: dict[int, BatchOutcome]
) -> None:
    """Phase 2b: ratings of a survey's catalog attributes checked against its scale, with one
    statement for the definitions of every survey the batch names, before anything is written."""
    standing = [(i, item) for i, item in valid if i not in outcomes and item.attributes]
    found = await definitions(session, workspace_id, [item.survey for _, item in standing])
    for index, item in standing:
        if item.survey is None or item.survey not in found:
            continue
        problem = catalog_problem(item.attributes, found[item.survey], ("body", "responses", index))
        if problem is not None:
            outcomes[index] = _failed(index, problem)


def _later_repeats(valid: Valid, outcomes: dict[int, BatchOutcome]) -> set[int]:
    """Items repeating the external_id of an earlier item still standing in this batch."""
    seen: set[str] = set()
    later: set[int] = set()
    for index, item in valid:
        if index in outcomes or item.external_id is None:
            continue
        if item.external_id in seen:
            later.add(index)
        seen.add(item.external_id)
    return later


async def _resolve_firsts(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    valid: Valid,
    outcomes: dict[int, BatchOutcome],
) -> dict[int, Snapshot]:
    """Phase 3: who answered each item that is not a repeat of an earlier one of this batch.

    A repeat is judged against the first item's stored row in the report, so nothing is written
    for it here: a refused repeat (or a duplicate) must not register its inline stakeholder.
    Should the first item be refused, the next one with its external_id stands in for it.
    """
    who: dict[int, Snapshot] = {}
    while True:
        later = _later_repeats(valid, outcomes)
        todo = [
            (index, item)
            for index, item in valid
            if index not in outcomes and index not in later and index not in who
        ]
        if not todo:
            return who
        who |= await _resolve_stakeholders(session, workspace_id, todo, outcomes)


async def _resolve_stakeholders(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    valid: Valid,
    outcomes: dict[int, BatchOutcome],
) -> dict[int, Snapshot]:
    """Who answered each of these items, registering inline stakeholders in one go."""
    inline = [
        (index, item.stakeholder)
        for index, item in valid
        if item.stakeholder is not None and index not in outcomes
    ]
    registered = await register_inline(
        session,
        workspace_id,
        [(("body", "responses", index, "stakeholder"), who) for index, who in inline],
    )
    who: dict[int, Snapshot] = {}
    for (index, _), result in zip(inline, registered, strict=True):
        if isinstance(result, ProblemError):
            outcomes[index] = _failed(index, result)
        else:
            who[index] = result
    # Named by id only: the stakeholder as registered, after this batch's own registrations.
    named = await stakeholders_by_id(
        session,
        workspace_id,
        {i.stakeholder_key for n, i in valid if i.stakeholder is None and n not in outcomes},
    )
    for index, item in valid:
        if index in outcomes or index in who:
            continue
        known = named.get(item.stakeholder_key)
        if known is None:
            outcomes[index] = _failed(
                index, _unknown_stakeholder(item.stakeholder_key, ("body", "responses", index))
            )
        else:
            who[index] = Snapshot.of(known)
    return who


@dataclass(frozen=True, slots=True)
class _Plan:
    rows: list[dict[str, Any]]
    planned: dict[int, dict[str, Any]]  # item index -> the row planned for it
    first_with_external: dict[str, int]  # external_id -> the first item carrying it


def _plan_rows(
    workspace_id: uuid.UUID,
    valid: Valid,
    who: dict[int, Snapshot],
    now: datetime,
    outcomes: dict[int, BatchOutcome],
) -> _Plan:
    """Phase 4: one row per item still standing; a repeated external_id only once."""
    rows: list[dict[str, Any]] = []
    planned: dict[int, dict[str, Any]] = {}
    first_with_external: dict[str, int] = {}
    for index, item in valid:
        if index in outcomes:
            continue
        if item.external_id is not None:
            if item.external_id in first_with_external:
                continue  # resolved in the report, once the first one's fate is known
            first_with_external[item.external_id] = index
        row = _row(workspace_id, item, who[index], now)
        rows.append(row)
        planned[index] = row
    return _Plan(rows, planned, first_with_external)


async def _store(
    session: AsyncSession, workspace_id: uuid.UUID, rows: list[dict[str, Any]]
) -> dict[uuid.UUID, datetime]:
    """Phase 5: one INSERT (rows whose external_id is stored already are skipped), then each
    touched stakeholder's chain relinked from their earliest new answer, and one statement
    for the `response.created` events of the stored rows."""
    inserted = await insert_rows(session, rows) if rows else {}
    earliest: dict[str, datetime] = {}
    stored = [row for row in rows if row["id"] in inserted]
    for row in stored:
        who, when = row["stakeholder_id"], row["submitted_at"]
        earliest[who] = min(when, earliest.get(who, when))
    await relink(session, workspace_id, earliest)
    await events.emit_many(
        session, workspace_id, [("response.created", events.response_data(r)) for r in stored]
    )
    return inserted


async def _report(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    valid: Valid,
    plan: _Plan,
    inserted: dict[uuid.UUID, datetime],
    outcomes: dict[int, BatchOutcome],
) -> None:
    """Phase 6: each stored item 201; each repeat of an item of this batch compared with the
    row stored for it, and of one stored meanwhile by another request, with that response."""
    planned, first_with_external = plan.planned, plan.first_with_external
    lost = [
        ext for ext, index in first_with_external.items() if planned[index]["id"] not in inserted
    ]
    existing = await _by_external_ids(session, workspace_id, lost) if lost else {}
    elsewhere: list[tuple[int, ResponseCreate, SurveyResponse]] = []
    for index, item in valid:
        if index in outcomes:
            continue
        ext = item.external_id
        row = planned[index if ext is None else first_with_external[ext]]
        loc: tuple[str | int, ...] = ("body", "responses", index)
        if row["id"] in inserted:
            if planned.get(index) is row:
                outcomes[index] = BatchOutcome(index, 201, id=row["id"])
            elif fields := differing_fields(item, row):
                outcomes[index] = _failed(index, repeat_conflict(item, row["id"], fields, loc))
            else:
                outcomes[index] = BatchOutcome(index, 200, id=row["id"], duplicate=True)
        elif ext is not None and ext in existing:
            elsewhere.append((index, item, existing[ext]))
        else:
            assert ext is not None
            outcomes[index] = _failed(index, _vanished(ext))
    await _settle_repeats(session, workspace_id, elsewhere, outcomes)


def _vanished(external_id: str) -> Conflict:
    # The stored response with this external_id was deleted between our insert and our read.
    return Conflict(
        f"the response with external_id {external_id!r} changed while this one was stored; retry",
        headers={"Retry-After": "1"},
    )


def _failed(index: int, error: ProblemError) -> BatchOutcome:
    return BatchOutcome(index, error.status, problem=error.body())
