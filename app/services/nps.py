"""Scores over a window: SQL counts the categories; app.scoring does the math."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, func, null, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Account, JobLevel, Response, Role
from app.schemas import GroupRead, IntervalRead, ScoreRead
from app.scoring import (
    PASSIVE_MIN,
    PROMOTER_MIN,
    CIMethod,
    Tally,
    confidence_interval,
    precision,
)


class Method(StrEnum):
    RESPONDENT = "respondent"
    LATEST_PER_STAKEHOLDER = "latest_per_stakeholder"


class Dimension(StrEnum):
    ROLE = "role"
    JOB_LEVEL = "job_level"
    DEPARTMENT = "department"
    ACCOUNT = "account"
    SEGMENT = "segment"
    INDUSTRY = "industry"
    SURVEY = "survey"


KEY_NAMES = {Dimension.ACCOUNT: "account_id"}


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Filters:
    account_id: str | None = None
    role: Role | None = None
    job_level: JobLevel | None = None
    department: str | None = None
    segment: str | None = None
    industry: str | None = None
    survey: str | None = None

    def echo(self) -> dict[str, str]:
        return {k: str(v) for k in self.__slots__ if (v := getattr(self, k)) is not None}


@dataclass(frozen=True, slots=True)
class Selection:
    """Which responses a score is made of, and how they are counted."""

    window: Window
    filters: Filters
    method: Method


@dataclass(frozen=True, slots=True)
class ScoreOptions:
    ci_method: CIMethod = CIMethod.ADJUSTED_WALD
    confidence: float = 0.95
    min_n: int = 5
    low_n: int = 30


def _department_key(column: Any) -> ColumnElement[Any]:
    # Free text grouped case-insensitively after trimming, as SPEC.md says.
    return func.lower(func.btrim(column))


def _dimension(dim: Dimension) -> ColumnElement[Any]:
    columns: dict[Dimension, Any] = {
        Dimension.ROLE: Response.role,
        Dimension.JOB_LEVEL: Response.job_level,
        Dimension.DEPARTMENT: _department_key(Response.department),
        Dimension.ACCOUNT: Response.account_id,
        Dimension.SEGMENT: Account.segment,
        Dimension.INDUSTRY: Account.industry,
        Dimension.SURVEY: Response.survey,
    }
    return columns[dim]  # type: ignore[no-any-return]


_NEEDS_ACCOUNT = {Dimension.SEGMENT, Dimension.INDUSTRY}


def _conditions(
    workspace_id: uuid.UUID, window: Window, filters: Filters
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        Response.workspace_id == workspace_id,
        Response.excluded.is_(False),
        Response.submitted_at >= window.start,
        Response.submitted_at < window.end,
    ]
    if filters.account_id is not None:
        conditions.append(Response.account_id == filters.account_id)
    if filters.role is not None:
        conditions.append(Response.role == filters.role.value)
    if filters.job_level is not None:
        conditions.append(Response.job_level == filters.job_level.value)
    if filters.department is not None:
        conditions.append(
            _department_key(Response.department) == filters.department.strip().lower()
        )
    if filters.survey is not None:
        conditions.append(Response.survey == filters.survey)
    if filters.segment is not None:
        conditions.append(Account.segment == filters.segment)
    if filters.industry is not None:
        conditions.append(Account.industry == filters.industry)
    return conditions


async def count(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    selection: Selection,
    *,
    dimension: Dimension | None = None,
) -> dict[str | None, Tally]:
    """One SQL aggregate: the category counts per value of `dimension` (one entry, None, without).

    Under latest_per_stakeholder the latest response is taken per stakeholder *and group*, so a
    group's score equals the score of the same slice asked for with a filter (a person who moved
    from one account to another still speaks for the first one about the time they were there).
    """
    filters = selection.filters
    key = _dimension(dimension).label("key") if dimension is not None else null().label("key")
    source = select(Response.score, key).where(
        *_conditions(workspace_id, selection.window, filters)
    )
    if filters.segment is not None or filters.industry is not None or dimension in _NEEDS_ACCOUNT:
        source = source.join(
            Account,
            and_(Account.workspace_id == Response.workspace_id, Account.id == Response.account_id),
        )
    if selection.method is Method.LATEST_PER_STAKEHOLDER:
        partition: list[Any] = [Response.stakeholder_id]
        if dimension is not None:
            partition.append(key)
        # Ties on submitted_at go to the response recorded last, then to the id, so the
        # choice never depends on the plan.
        source = source.ext(distinct_on(*partition)).order_by(
            *partition,
            Response.submitted_at.desc(),
            Response.created_at.desc(),
            Response.id.desc(),
        )
    rows = source.subquery()
    counts = select(
        rows.c.key,
        func.count().filter(rows.c.score >= PROMOTER_MIN),
        func.count().filter(and_(rows.c.score >= PASSIVE_MIN, rows.c.score < PROMOTER_MIN)),
        func.count().filter(rows.c.score < PASSIVE_MIN),
    ).group_by(rows.c.key)
    result = await session.execute(counts)
    return {row[0]: Tally(int(row[1]), int(row[2]), int(row[3])) for row in result.all()}


async def count_total(
    session: AsyncSession, workspace_id: uuid.UUID, selection: Selection
) -> Tally:
    """The counts of the whole selection: each stakeholder once under latest_per_stakeholder."""
    return (await count(session, workspace_id, selection)).get(None, Tally())


def score_read(tally: Tally, options: ScoreOptions) -> ScoreRead:
    n = tally.n
    interval = confidence_interval(tally, method=options.ci_method, confidence=options.confidence)

    def pct(count: int) -> float | None:
        return 100.0 * count / n if n else None

    return ScoreRead(
        nps=tally.nps,
        n=n,
        promoters=tally.promoters,
        passives=tally.passives,
        detractors=tally.detractors,
        promoter_pct=pct(tally.promoters),
        passive_pct=pct(tally.passives),
        detractor_pct=pct(tally.detractors),
        ci=None
        if interval is None
        else IntervalRead(
            low=interval.low, high=interval.high, level=options.confidence, method=options.ci_method
        ),
        precision=precision(n, min_n=options.min_n, low_n=options.low_n),
        n_effective=float(n),
        unweighted=None,
    )


def groups_read(
    dimension: Dimension, tallies: dict[str | None, Tally], options: ScoreOptions
) -> list[GroupRead]:
    """Groups in key order, the unknown (null) group last."""
    name = KEY_NAMES.get(dimension, dimension.value)
    ordered = sorted(tallies.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    return [GroupRead(key={name: key}, score=score_read(t, options)) for key, t in ordered]
