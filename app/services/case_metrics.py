"""Does closing the loop work: the counts, times and recovery of follow-up cases, for
GET /v1/cases/metrics. Two statements count (the cases, then the recovery groups); the survival
and comparison math is app.scoring.survival's.

Every figure is about the cases opened in the window [from, to) that match the filters; the
detractor answers with no case are those submitted in the window (account_id and role apply to
them too; owner and rule only to cases).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, not_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.models import Case, CaseKind, CaseResponse, CaseStatus, Role, SurveyResponse
from app.scoring import Category
from app.scoring.survival import Survival, survival
from app.services.cases import overdue_at
from app.sql import is_category


@dataclass(frozen=True, slots=True)
class Filters:
    kind: CaseKind = CaseKind.RECOVERY
    from_: datetime | None = None
    to: datetime | None = None
    account_id: str | None = None
    role: Role | None = None
    rule: str | None = None
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class CaseMetrics:
    opened: int
    closed: int
    open_now: int
    overdue: int
    closed_within_sla: int
    first_action: Survival
    close: Survival
    # (recovered, answered again): detractors with a closed case, and with no case.
    with_case: tuple[int, int]
    without_case: tuple[int, int]


def _hours(end: Any) -> ColumnElement[Any]:
    return func.extract("epoch", end - Case.opened_at) / 3600


def _matching(
    filters: Filters, instant: Any, equal: list[tuple[Any, str | None]]
) -> list[ColumnElement[bool]]:
    """`instant` in [from, to), and each column equal to its value where one is given."""
    where = [column == value for column, value in equal if value is not None]
    if filters.from_ is not None:
        where.append(instant >= filters.from_)
    if filters.to is not None:
        where.append(instant < filters.to)
    return where


def _cases(workspace_id: uuid.UUID, filters: Filters) -> list[ColumnElement[bool]]:
    equal = [
        (Case.account_id, filters.account_id),
        (Case.role, filters.role),
        (Case.rule, filters.rule),
        (Case.owner, filters.owner),
    ]
    return [
        Case.workspace_id == workspace_id,
        Case.kind == filters.kind,
        *_matching(filters, Case.opened_at, equal),
    ]


def _next_score(workspace_id: uuid.UUID, stakeholder: Any, after: Any) -> Any:
    """The stakeholder's first counted answer's score after `after` (NULL when none)."""
    later = aliased(SurveyResponse)
    return (
        select(later.score)
        .where(
            later.workspace_id == workspace_id,
            later.stakeholder_id == stakeholder,
            later.excluded.is_(False),
            later.submitted_at > after,
        )
        .order_by(later.submitted_at, later.id)
        .limit(1)
        .scalar_subquery()
    )


def _tally(rows: Select[Any]) -> Select[int, int]:
    """(recovered, answered again) over a one-column select of next scores."""
    sub = rows.subquery()
    score = sub.c[0]
    recovered = func.count().filter(not_(is_category(score, Category.DETRACTOR)))
    return select(recovered, func.count(score))


def _recovery(workspace_id: uuid.UUID, filters: Filters, now: datetime) -> Select[Any]:
    trigger = aliased(SurveyResponse)
    detractor_trigger = exists().where(
        CaseResponse.workspace_id == Case.workspace_id,
        CaseResponse.case_id == Case.id,
        trigger.workspace_id == CaseResponse.workspace_id,
        trigger.id == CaseResponse.response_id,
        is_category(trigger.score, Category.DETRACTOR),
    )
    with_case = select(_next_score(workspace_id, Case.stakeholder_id, Case.closed_at)).where(
        *_cases(workspace_id, filters),
        Case.status == CaseStatus.CLOSED.value,
        Case.closed_at <= now,
        detractor_trigger,
    )
    answer = SurveyResponse
    on_a_case = exists().where(
        CaseResponse.workspace_id == answer.workspace_id,
        CaseResponse.response_id == answer.id,
        CaseResponse.kind == CaseKind.RECOVERY.value,
    )
    where = [
        answer.workspace_id == workspace_id,
        answer.excluded.is_(False),
        is_category(answer.score, Category.DETRACTOR),
        not_(on_a_case),
        *_matching(
            filters,
            answer.submitted_at,
            [(answer.account_id, filters.account_id), (answer.role, filters.role)],
        ),
    ]
    without_case = select(
        _next_score(workspace_id, answer.stakeholder_id, answer.submitted_at)
    ).where(*where)
    a, b = _tally(with_case).subquery(), _tally(without_case).subquery()
    # Two one-row tallies side by side.
    return select(*a.c, *b.c).select_from(a.join(b, true()))


async def case_metrics(
    session: AsyncSession, workspace_id: uuid.UUID, filters: Filters, *, now: datetime
) -> CaseMetrics:
    """The figures for the cases opened in the window; open cases are censored at `now`."""
    closed = Case.status == CaseStatus.CLOSED.value
    acted_at = func.coalesce(Case.first_action_at, Case.closed_at, now)
    closed_at = func.coalesce(Case.closed_at, now)
    counts = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(closed),
                func.count().filter(not_(closed)),
                func.count().filter(overdue_at(now)),
                func.count().filter(and_(closed, _hours(Case.closed_at) <= Case.sla_hours)),
                func.array_agg(_hours(acted_at)),
                func.array_agg(Case.first_action_at.is_not(None)),
                func.array_agg(_hours(closed_at)),
                func.array_agg(closed),
            ).where(*_cases(workspace_id, filters))
        )
    ).one()
    opened, n_closed, open_now, overdue, within, acted, seen, to_close, shut = counts
    recovery = (await session.execute(_recovery(workspace_id, filters, now))).one()
    return CaseMetrics(
        opened=opened,
        closed=n_closed,
        open_now=open_now,
        overdue=overdue,
        closed_within_sla=within,
        first_action=survival(zip((float(h) for h in acted or []), seen or [], strict=True)),
        close=survival(zip((float(h) for h in to_close or []), shut or [], strict=True)),
        with_case=(recovery[0], recovery[1]),
        without_case=(recovery[2], recovery[3]),
    )
