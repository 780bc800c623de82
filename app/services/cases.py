"""Working follow-up cases: list, read with their answers, history, notes and changes, move them
forward, annotate them. Every change is kept (who, when, each field from and to) and emits its
event (app.services.case_log). Cases are opened by the worker (app.services.case_opening).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, NotFound, Unprocessable, field_error, rfc3339
from app.models import (
    CASE_OUTCOMES,
    Case,
    CaseChange,
    CaseKind,
    CaseNote,
    CaseResponse,
    CaseStatus,
    Role,
    SurveyResponse,
)
from app.pagination import paginate
from app.schemas.cases import CasePatch
from app.services.case_log import log_change

# Status only moves forward.
STATUS_ORDER = (CaseStatus.OPEN, CaseStatus.IN_PROGRESS, CaseStatus.CLOSED)
HISTORY_LIMIT = 100


class CaseStatusConflict(Conflict):
    """A case's status only moves forward, and a closed case is final."""

    slug, title = "case-status-conflict", "Case status conflict"


def overdue_at(now: datetime) -> Any:
    """Open or in progress, and past due at `now`."""
    return and_(Case.status != CaseStatus.CLOSED.value, Case.due_at < now)


async def list_cases(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    now: datetime,
    limit: int,
    cursor: str | None,
    status: CaseStatus | None = None,
    kind: CaseKind | None = None,
    owner: str | None = None,
    account_id: str | None = None,
    role: Role | None = None,
    rule: str | None = None,
    overdue: bool | None = None,
) -> tuple[list[Case], str | None]:
    """A page of cases in (updated_at, id) order, filtered."""
    query: Select[Case] = select(Case).where(Case.workspace_id == workspace_id)
    for column, value in (
        (Case.status, status),
        (Case.kind, kind),
        (Case.owner, owner),
        (Case.account_id, account_id),
        (Case.role, role),
        (Case.rule, rule),
    ):
        if value is not None:
            query = query.where(column == value)
    if overdue is not None:
        query = query.where(overdue_at(now) if overdue else not_(overdue_at(now)))
    return await paginate(
        session, query, updated_col=Case.updated_at, id_col=Case.id, limit=limit, cursor=cursor
    )


async def get_case(
    session: AsyncSession, workspace_id: uuid.UUID, case_id: uuid.UUID, *, lock: bool = False
) -> Case:
    query = select(Case).where(Case.workspace_id == workspace_id, Case.id == case_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    case = await session.scalar(query)
    if case is None:
        raise NotFound(f"case {case_id} does not exist")
    return case


@dataclass(frozen=True, slots=True)
class Trigger:
    response: SurveyResponse
    rule: str
    added_at: datetime


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case with everything GET /v1/cases/{id} shows beside it."""

    case: Case
    triggers: list[Trigger]
    history: list[SurveyResponse]
    notes: list[CaseNote]
    changes: list[CaseChange]


async def case_view(session: AsyncSession, workspace_id: uuid.UUID, case_id: uuid.UUID) -> CaseView:
    case = await get_case(session, workspace_id, case_id)
    triggers = await session.execute(
        select(SurveyResponse, CaseResponse.rule, CaseResponse.added_at)
        .join(
            CaseResponse,
            and_(
                CaseResponse.workspace_id == SurveyResponse.workspace_id,
                CaseResponse.response_id == SurveyResponse.id,
            ),
        )
        .where(CaseResponse.workspace_id == workspace_id, CaseResponse.case_id == case_id)
        .order_by(SurveyResponse.submitted_at, SurveyResponse.id)
    )
    latest = (
        select(SurveyResponse)
        .where(
            SurveyResponse.workspace_id == workspace_id,
            SurveyResponse.stakeholder_id == case.stakeholder_id,
            ~SurveyResponse.excluded,
        )
        .order_by(SurveyResponse.submitted_at.desc(), SurveyResponse.id.desc())
        .limit(HISTORY_LIMIT)
    )
    history = list(await session.scalars(latest))
    notes = await session.scalars(
        select(CaseNote)
        .where(CaseNote.workspace_id == workspace_id, CaseNote.case_id == case_id)
        .order_by(CaseNote.created_at, CaseNote.id)
    )
    changes = await session.scalars(
        select(CaseChange)
        .where(CaseChange.workspace_id == workspace_id, CaseChange.case_id == case_id)
        .order_by(CaseChange.seq)
    )
    return CaseView(
        case,
        [Trigger(r, rule, added_at) for r, rule, added_at in triggers],
        history[::-1],
        list(notes),
        list(changes),
    )


async def _db_now(session: AsyncSession) -> datetime:
    """The database's clock, as the case was opened by (opened_at is its event's occurred_at):
    durations between a case's stamps never mix two clocks."""
    stamp: datetime | None = await session.scalar(select(func.now()))
    assert stamp is not None
    return stamp


def _wire(value: Any) -> Any:
    return rfc3339(value) if isinstance(value, datetime) else value


def _outcome_problem(case: Case, patch: CasePatch, closing: bool) -> Unprocessable | None:
    sent = patch.model_fields_set
    if not closing:
        for name in ("outcome", "root_cause"):
            if name in sent and case.status != CaseStatus.CLOSED:
                return Unprocessable(
                    f"{name} is given when closing the case (status: closed)",
                    errors=[field_error(["body", name], "only with status: closed")],
                )
        return None
    allowed = CASE_OUTCOMES[CaseKind(case.kind)]
    if patch.outcome is None:
        return Unprocessable(
            "closing a case needs an outcome",
            errors=[field_error(["body", "outcome"], f"required: one of {', '.join(allowed)}")],
        )
    if patch.outcome not in allowed:
        return Unprocessable(
            f"{patch.outcome} is not an outcome of a {case.kind} case",
            errors=[field_error(["body", "outcome"], f"one of {', '.join(allowed)}")],
        )
    return None


async def update_case(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    case_id: uuid.UUID,
    patch: CasePatch,
    *,
    by: str,
) -> Case:
    """Apply a patch: a step back in status, or a change to a closed case, is a 409; a patch
    that changes nothing keeps nothing and emits nothing."""
    case = await get_case(session, workspace_id, case_id, lock=True)
    sent = patch.model_fields_set
    old_status = CaseStatus(case.status)
    new_status = patch.status if patch.status is not None else old_status
    if STATUS_ORDER.index(new_status) < STATUS_ORDER.index(old_status):
        raise CaseStatusConflict(
            f"the case is {old_status.value}: its status only moves forward "
            "(open, in_progress, closed)"
        )
    closing = old_status != CaseStatus.CLOSED and new_status == CaseStatus.CLOSED
    problem = _outcome_problem(case, patch, closing)
    if problem is not None:
        raise problem
    wanted = {name: getattr(patch, name) for name in sent if name != "status"}
    if closing or new_status != old_status:
        wanted["status"] = new_status.value
    changes = {
        name: {"from": _wire(getattr(case, name)), "to": _wire(value)}
        for name, value in wanted.items()
        if getattr(case, name) != value
    }
    if not changes:
        return case
    if old_status == CaseStatus.CLOSED:
        raise CaseStatusConflict("the case is closed: a closed case is final (add a note instead)")
    for name, value in wanted.items():
        setattr(case, name, value)
    stamp = await _db_now(session)
    if closing:
        case.closed_at = stamp
    case.first_action_at = case.first_action_at or stamp
    case.updated_at = stamp
    await session.flush()
    await log_change(session, case, action="updated", by=by, changes=changes)
    return case


async def add_note(
    session: AsyncSession, workspace_id: uuid.UUID, case_id: uuid.UUID, body: str, *, by: str
) -> CaseNote:
    """Add a note (a closed case takes notes too); a first note is the case's first action."""
    case = await get_case(session, workspace_id, case_id, lock=True)
    stamp = await _db_now(session)
    note = CaseNote(
        workspace_id=workspace_id,
        id=uuid.uuid4(),
        case_id=case_id,
        author=by,
        body=body,
        created_at=stamp,
    )
    session.add(note)
    case.first_action_at = case.first_action_at or stamp
    case.updated_at = stamp
    await session.flush()
    await log_change(
        session,
        case,
        action="note_added",
        by=by,
        changes={"note_id": {"from": None, "to": str(note.id)}},
    )
    return note


async def open_recovery_cases(
    session: AsyncSession, workspace_id: uuid.UUID, *, account_id: str | None = None
) -> dict[str, list[uuid.UUID]]:
    """The ids of each account's (or the one account's) recovery cases not closed yet, oldest
    first: the at-risk rows' and the account report's evidence."""
    query = select(Case.account_id, Case.id).where(
        Case.workspace_id == workspace_id,
        Case.kind == CaseKind.RECOVERY.value,
        Case.status != CaseStatus.CLOSED.value,
    )
    if account_id is not None:
        query = query.where(Case.account_id == account_id)
    out: dict[str, list[uuid.UUID]] = {}
    for account, case_id in await session.execute(
        query.order_by(Case.account_id, Case.opened_at, Case.id)
    ):
        out.setdefault(account, []).append(case_id)
    return out
