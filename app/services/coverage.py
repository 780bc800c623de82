"""Coverage: who at an account was heard from, and which share of the portfolio answered."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Exists,
    Integer,
    case,
    cast,
    distinct,
    exists,
    func,
    literal,
    null,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Account, JobLevel, Role, Stakeholder, SurveyResponse
from app.services.selection import Window
from app.sql import department_key


@dataclass(frozen=True, slots=True)
class Group:
    registered: int = 0
    answered: int = 0
    responses: int = 0
    last_answered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Activity:
    stakeholder_id: str
    name: str | None
    role: Role
    job_level: JobLevel
    department: str | None
    last_answered_at: datetime | None
    answered_in_window: bool


@dataclass(frozen=True, slots=True)
class AccountCoverage:
    stakeholders: Group
    by_role: dict[Role, Group]
    by_job_level: dict[JobLevel, Group]
    by_department: dict[str | None, Group]
    activity: list[Activity]

    def silent_roles(self) -> dict[Role, Group]:
        return {role: g for role, g in self.by_role.items() if g.responses == 0}


N = TypeVar("N", int, Decimal)


@dataclass(frozen=True, slots=True)
class Share(Generic[N]):
    total: N
    answered: N
    decision_maker_answered: N


@dataclass(frozen=True, slots=True)
class PortfolioCoverage:
    accounts: Share[int]
    revenue: Share[Decimal]
    accounts_without_revenue: int
    currencies: list[str]


def _at_account(workspace_id: uuid.UUID, account_id: str, before: datetime) -> list[Any]:
    return [
        SurveyResponse.workspace_id == workspace_id,
        SurveyResponse.account_id == account_id,
        ~SurveyResponse.excluded,
        SurveyResponse.submitted_at < before,
    ]


# Bits of GROUPING(role, job_level, department): a 1 marks a column the row is not grouped by.
_BY_ROLE, _BY_JOB_LEVEL, _BY_DEPARTMENT, _OVERALL = 0b011, 0b101, 0b110, 0b111


async def account_coverage(
    session: AsyncSession, workspace_id: uuid.UUID, account_id: str, *, window: Window
) -> AccountCoverage:
    """Registered and answering stakeholders by role, job level and department; who was last heard.

    Registered and answered group the people registered now by their current profile; responses
    and last_answered_at group the answers given at this account by the profile they had then.
    """
    at_account = _at_account(workspace_id, account_id, window.end)
    last = (
        select(func.max(SurveyResponse.submitted_at))
        .where(*at_account, SurveyResponse.stakeholder_id == Stakeholder.id)
        .scalar_subquery()
    )
    registered = [Stakeholder.workspace_id == workspace_id, Stakeholder.account_id == account_id]
    activity_rows = await session.execute(
        select(
            Stakeholder.id,
            Stakeholder.name,
            Stakeholder.role,
            Stakeholder.job_level,
            Stakeholder.department,
            last.label("last_answered_at"),
        )
        .where(*registered)
        .order_by(last.desc().nulls_last(), Stakeholder.id)
    )
    activity = [
        Activity(
            stakeholder_id=row.id,
            name=row.name,
            role=Role(row.role),
            job_level=JobLevel(row.job_level),
            department=row.department,
            last_answered_at=row.last_answered_at,
            answered_in_window=_within(row.last_answered_at, window),
        )
        for row in activity_rows.all()
    ]

    def number(value: int) -> ColumnElement[int]:
        return literal(value, Integer)

    people = select(
        Stakeholder.role.label("role"),
        Stakeholder.job_level.label("job_level"),
        department_key(Stakeholder.department).label("department"),
        number(1).label("registered"),
        # The latest answer before `to` is in the window exactly when any answer is.
        case((last >= window.start, 1), else_=0).label("answered"),
        number(0).label("responses"),
        cast(null(), DateTime(timezone=True)).label("answered_at"),
    ).where(*registered)
    answers = select(
        SurveyResponse.role,
        SurveyResponse.job_level,
        department_key(SurveyResponse.department),
        number(0),
        number(0),
        case((SurveyResponse.submitted_at >= window.start, 1), else_=0),
        SurveyResponse.submitted_at,
    ).where(*at_account)
    u = union_all(people, answers).subquery("u")
    dimensions = (u.c.role, u.c.job_level, u.c.department)
    groups = select(
        func.grouping(*dimensions).label("grouping"),
        *dimensions,
        # The overall set has a row even when there is nothing to sum.
        func.coalesce(func.sum(u.c.registered), 0).label("registered"),
        func.coalesce(func.sum(u.c.answered), 0).label("answered"),
        func.coalesce(func.sum(u.c.responses), 0).label("responses"),
        func.max(u.c.answered_at).label("last_answered_at"),
    ).group_by(func.grouping_sets(*(tuple_(d) for d in dimensions), tuple_()))

    overall = Group()
    by_role = {role: Group() for role in Role}
    by_job_level = {level: Group() for level in JobLevel}
    by_department: dict[str | None, Group] = {}
    for row in (await session.execute(groups)).all():
        group = Group(
            int(row.registered), int(row.answered), int(row.responses), row.last_answered_at
        )
        if row.grouping == _BY_ROLE:
            by_role[Role(row.role)] = group
        elif row.grouping == _BY_JOB_LEVEL:
            by_job_level[JobLevel(row.job_level)] = group
        elif row.grouping == _BY_DEPARTMENT:
            by_department[row.department] = group
        elif row.grouping == _OVERALL:
            overall = group
    departments = sorted(by_department, key=lambda d: (d is None, d or ""))
    return AccountCoverage(
        stakeholders=overall,
        by_role=by_role,
        by_job_level=by_job_level,
        by_department={d: by_department[d] for d in departments},
        activity=activity,
    )


def _within(moment: datetime | None, window: Window) -> bool:
    return moment is not None and window.start <= moment < window.end


def _heard_from(window: Window, *extra: ColumnElement[bool]) -> Exists:
    return exists().where(
        SurveyResponse.workspace_id == Account.workspace_id,
        SurveyResponse.account_id == Account.id,
        ~SurveyResponse.excluded,
        SurveyResponse.submitted_at >= window.start,
        SurveyResponse.submitted_at < window.end,
        *extra,
    )


async def portfolio_coverage(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    window: Window,
    segment: str | None = None,
    industry: str | None = None,
) -> PortfolioCoverage:
    """How many accounts, and how much annual revenue, answered in the window: one aggregate."""
    accounts = select(
        Account.annual_revenue.label("revenue"),
        Account.currency,
        _heard_from(window).label("answered"),
        _heard_from(window, SurveyResponse.role == Role.DECISION_MAKER.value).label("dm"),
    ).where(Account.workspace_id == workspace_id)
    if segment is not None:
        accounts = accounts.where(Account.segment == segment)
    if industry is not None:
        accounts = accounts.where(Account.industry == industry)
    a = accounts.subquery("a")
    has_revenue = a.c.revenue.is_not(None)
    row = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(a.c.answered),
                func.count().filter(a.c.dm),
                func.coalesce(func.sum(a.c.revenue), 0),
                func.coalesce(func.sum(a.c.revenue).filter(a.c.answered), 0),
                func.coalesce(func.sum(a.c.revenue).filter(a.c.dm), 0),
                func.count().filter(~has_revenue),
                # Only the currencies of the revenue that was summed.
                func.array_agg(distinct(a.c.currency)).filter(
                    has_revenue, a.c.currency.is_not(None)
                ),
            )
        )
    ).one()
    return PortfolioCoverage(
        accounts=Share(int(row[0]), int(row[1]), int(row[2])),
        revenue=Share(Decimal(row[3]), Decimal(row[4]), Decimal(row[5])),
        accounts_without_revenue=int(row[6]),
        currencies=sorted(row[7] or []),
    )


async def last_answered_by_account(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    before: datetime,
    account_id: str | None = None,
) -> dict[str, datetime]:
    """Each account's (or the one account's) latest non-excluded answer before `before`;
    unheard accounts are absent."""
    # One backward probe of the (account, submitted_at) index per account, rather than an
    # aggregate over the workspace's whole history.
    latest = (
        select(func.max(SurveyResponse.submitted_at))
        .where(
            SurveyResponse.workspace_id == workspace_id,
            SurveyResponse.account_id == Account.id,
            ~SurveyResponse.excluded,
            SurveyResponse.submitted_at < before,
        )
        .scalar_subquery()
    )
    query = select(Account.id, latest).where(Account.workspace_id == workspace_id)
    if account_id is not None:
        query = query.where(Account.id == account_id)
    return {row[0]: row[1] for row in await session.execute(query) if row[1] is not None}


async def decision_maker_answered(
    session: AsyncSession, workspace_id: uuid.UUID, *, window: Window, account_id: str | None = None
) -> set[str]:
    """The accounts (of all, or the one) with a non-excluded decision-maker answer in the
    window."""
    # One probe of the (account, submitted_at) index per account, stopping at the first
    # decision maker, rather than a scan of every answer in the window.
    heard = exists().where(
        SurveyResponse.workspace_id == workspace_id,
        SurveyResponse.account_id == Account.id,
        ~SurveyResponse.excluded,
        SurveyResponse.role == Role.DECISION_MAKER.value,
        SurveyResponse.submitted_at >= window.start,
        SurveyResponse.submitted_at < window.end,
    )
    query = select(Account.id).where(Account.workspace_id == workspace_id, heard)
    if account_id is not None:
        query = query.where(Account.id == account_id)
    return set(await session.scalars(query))
