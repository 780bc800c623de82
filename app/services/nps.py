"""Scores over a window: SQL counts the categories; app.scoring does the math."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
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


def column_name(dim: Dimension) -> str:
    return KEY_NAMES.get(dim, dim.value)


def _columns(with_account: bool) -> dict[str, ColumnElement[Any]]:
    """What a response can be filtered and grouped by, named as in the API."""
    columns: dict[str, Any] = {
        "account_id": Response.account_id,
        "role": Response.role,
        "job_level": Response.job_level,
        "department": _department_key(Response.department),
        "survey": Response.survey,
    }
    if with_account:  # the account's current segment and industry
        columns["segment"] = Account.segment
        columns["industry"] = Account.industry
    return columns


def _slice(columns: dict[str, Any], filters: Filters) -> list[ColumnElement[bool]]:
    """The filters that pick whose answers count, as conditions on `columns`."""
    wanted = {
        "account_id": filters.account_id,
        "role": filters.role.value if filters.role else None,
        "job_level": filters.job_level.value if filters.job_level else None,
        "department": filters.department.strip().lower() if filters.department else None,
        "segment": filters.segment,
        "industry": filters.industry,
    }
    return [columns[name] == value for name, value in wanted.items() if value is not None]


_NEEDS_ACCOUNT = {Dimension.SEGMENT, Dimension.INDUSTRY}

Cells = dict[tuple[str | None, ...], Tally]


async def count(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    selection: Selection,
    dimensions: Sequence[Dimension] = (),
) -> Cells:
    """One SQL aggregate: the category counts per combination of `dimensions`.

    The window and the survey decide which responses are candidates. Under
    latest_per_stakeholder each stakeholder's latest candidate is chosen first, once, and the
    other filters and the grouping apply to it as it was then: a person promoted from user to
    decision maker counts as a decision maker, a person who moved to another account counts
    there, and the groups of a breakdown add up to the total.
    """
    filters = selection.filters
    with_account = (
        filters.segment is not None
        or filters.industry is not None
        or bool(_NEEDS_ACCOUNT.intersection(dimensions))
    )
    columns = _columns(with_account)
    names = [column_name(d) for d in dimensions]

    def responses(*selected: Any) -> Select[Any]:
        query = select(*selected).where(
            Response.workspace_id == workspace_id,
            Response.excluded.is_(False),
            Response.submitted_at >= selection.window.start,
            Response.submitted_at < selection.window.end,
        )
        if filters.survey is not None:
            query = query.where(Response.survey == filters.survey)
        if with_account:
            query = query.join(
                Account,
                and_(
                    Account.workspace_id == Response.workspace_id,
                    Account.id == Response.account_id,
                ),
            )
        return query

    if selection.method is Method.RESPONDENT:
        rows = (
            responses(Response.score, *[columns[n].label(n) for n in names])
            .where(*_slice(columns, filters))
            .subquery()
        )
    else:
        latest = responses(Response.score, *[c.label(n) for n, c in columns.items()])
        if wanted := _slice(columns, filters):
            # Only people with an answer in the slice can have their latest one there.
            latest = latest.where(
                Response.stakeholder_id.in_(responses(Response.stakeholder_id).where(*wanted))
            )
        # Ties on submitted_at go to the response recorded last, then to the id, so the choice
        # never depends on the plan.
        chosen = (
            latest.ext(distinct_on(Response.stakeholder_id))
            .order_by(
                Response.stakeholder_id,
                Response.submitted_at.desc(),
                Response.created_at.desc(),
                Response.id.desc(),
            )
            .subquery()
        )
        as_chosen = {n: chosen.c[n] for n in columns}
        rows = (
            select(chosen.c.score, *[as_chosen[n].label(n) for n in names])
            .where(*_slice(as_chosen, filters))
            .subquery()
        )
    group = [rows.c[n] for n in names]
    counts = select(
        *group,
        func.count().filter(rows.c.score >= PROMOTER_MIN),
        func.count().filter(and_(rows.c.score >= PASSIVE_MIN, rows.c.score < PROMOTER_MIN)),
        func.count().filter(rows.c.score < PASSIVE_MIN),
    ).group_by(*group)
    width = len(names)
    return {
        tuple(row[:width]): Tally(int(row[width]), int(row[width + 1]), int(row[width + 2]))
        for row in (await session.execute(counts)).all()
    }


def total(cells: Cells) -> Tally:
    return sum(cells.values(), Tally())


def marginal(cells: Cells, position: int) -> dict[str | None, Tally]:
    """The cells summed over every dimension but the one at `position`."""
    out: dict[str | None, Tally] = {}
    for key, tally in cells.items():
        out[key[position]] = out.get(key[position], Tally()) + tally
    return out


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
    name = column_name(dimension)
    ordered = sorted(tallies.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    return [GroupRead(key={name: key}, score=score_read(t, options)) for key, t in ordered]
