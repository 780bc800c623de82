"""Scores over windows: SQL counts categories and sums weights; app.scoring does the math.

One statement answers a whole report: every window (a trend's buckets) and every cell of a
breakdown, so they all come from one snapshot.
"""

import itertools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Numeric,
    Select,
    and_,
    case,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Account, JobLevel, Role, SurveyResponse
from app.scoring import Method
from app.services.cells import Cells, accounts_as_units, tally_rows


class Dimension(StrEnum):
    ROLE = "role"
    JOB_LEVEL = "job_level"
    DEPARTMENT = "department"
    ACCOUNT = "account"
    SEGMENT = "segment"
    INDUSTRY = "industry"
    SURVEY = "survey"


KEY_NAMES = {Dimension.ACCOUNT: "account_id"}
ACCOUNT_DIMENSIONS = frozenset({Dimension.SEGMENT, Dimension.INDUSTRY})


def column_name(dim: Dimension) -> str:
    return KEY_NAMES.get(dim, dim.value)


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
class Weighting:
    """Role weights times job-level weights, per response."""

    role: Mapping[str, float]
    job_level: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Selection:
    """Which responses a score is made of, and how they are counted, in each window."""

    windows: Sequence[Window]
    filters: Filters
    method: Method
    # role_weighted; under account_as_unit, the weights of each account's mean score.
    weighting: Weighting | None = None
    by_revenue: bool = False  # account_as_unit: accounts weighted by annual revenue


_LATEST = frozenset(Method) - {Method.RESPONDENT}
_INSTANTS = ARRAY(DateTime(timezone=True))
_TIER = {Role.DECISION_MAKER.value: 1, Role.INFLUENCER.value: 2}


def department_key(column: Any) -> ColumnElement[Any]:
    # Free text grouped case-insensitively after trimming, as SPEC.md says.
    return func.lower(func.btrim(column))


def _number(value: float) -> ColumnElement[Decimal]:
    # Weights go in as exact decimals, so sums and means in SQL have no float error.
    return literal(Decimal(repr(float(value))), Numeric)


def _weight(role: Any, job_level: Any, weighting: Weighting) -> ColumnElement[Any]:
    def lookup(column: Any, weights: Mapping[str, float]) -> ColumnElement[Any]:
        return case({k: _number(w) for k, w in weights.items()}, value=column, else_=_number(1))

    return lookup(role, weighting.role) * lookup(job_level, weighting.job_level)


def _wanted(filters: Filters) -> dict[str, Any]:
    return {
        "account_id": filters.account_id,
        "role": filters.role.value if filters.role else None,
        "job_level": filters.job_level.value if filters.job_level else None,
        "department": filters.department.strip().lower() if filters.department else None,
        "segment": filters.segment,
        "industry": filters.industry,
    }


def _conditions(columns: Mapping[str, Any], filters: Filters) -> list[ColumnElement[bool]]:
    return [
        columns[name] == value
        for name, value in _wanted(filters).items()
        if value is not None and name in columns
    ]


def _back_to_back(windows: Sequence[Window]) -> bool:
    return all(a.end == b.start for a, b in itertools.pairwise(windows))


# Up to this many windows, each gets its own branch of a UNION ALL and so its own index plan
# (a period and the one before it); more (a trend's buckets) share one scan.
FEW_WINDOWS = 4


def _candidates(
    workspace_id: uuid.UUID,
    selection: Selection,
    *,
    chained: bool,
    where: Sequence[ColumnElement[bool]] = (),
) -> Any:
    """Each response of the windows (once per window it falls in), with what it can be cut by.

    `chained`: only each stakeholder's latest response in the window, read off the chain.
    """
    columns: list[Any] = [
        SurveyResponse.stakeholder_id,
        SurveyResponse.score,
        SurveyResponse.account_id,
        SurveyResponse.role,
        SurveyResponse.job_level,
        department_key(SurveyResponse.department).label("department"),
        SurveyResponse.survey,
    ]
    if selection.method in _LATEST and not chained:
        columns += [SurveyResponse.submitted_at, SurveyResponse.created_at, SurveyResponse.id]

    def finish(query: Select[Any]) -> Select[Any]:
        query = query.where(
            SurveyResponse.workspace_id == workspace_id, ~SurveyResponse.excluded, *where
        )
        if selection.filters.survey is not None:
            query = query.where(SurveyResponse.survey == selection.filters.survey)
        return query

    windows = selection.windows
    if len(windows) <= FEW_WINDOWS:
        branches = []
        for index, window in enumerate(windows):
            branch = select(literal(index).label("period"), *columns).where(
                SurveyResponse.submitted_at >= window.start,
                SurveyResponse.submitted_at < window.end,
            )
            if chained:
                branch = branch.where(SurveyResponse.superseded_at >= window.end)
            branches.append(finish(branch))
        return branches[0] if len(branches) == 1 else union_all(*branches)
    if _back_to_back(windows):
        # Back-to-back buckets (a trend without rolling_days): one range scan of the whole span,
        # each answer's bucket found by binary search in the bounds.
        bounds = literal([windows[0].start, *(w.end for w in windows)], _INSTANTS)
        bucket = func.width_bucket(SurveyResponse.submitted_at, bounds)
        query = select((bucket - 1).label("period"), *columns).where(
            SurveyResponse.submitted_at >= windows[0].start,
            SurveyResponse.submitted_at < windows[-1].end,
        )
        if chained:
            # superseded_at >= the bucket's end: the next answer falls in a later bucket or after.
            query = query.where(func.width_bucket(SurveyResponse.superseded_at, bounds) > bucket)
        return finish(query)
    period = (
        func.unnest(
            literal([w.start for w in windows], _INSTANTS),
            literal([w.end for w in windows], _INSTANTS),
        )
        .table_valued("start", "end", with_ordinality="ordinal")
        .render_derived(name="period")
    )
    return finish(
        select((period.c.ordinal - 1).label("period"), *columns).join_from(
            SurveyResponse,
            period,
            and_(
                SurveyResponse.submitted_at >= period.c.start,
                SurveyResponse.submitted_at < period.c.end,
                SurveyResponse.superseded_at >= period.c.end if chained else literal(True),
            ),
        )
    )


async def count(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    selection: Selection,
    dimensions: Sequence[Dimension] = (),
    *,
    use_chain: bool = True,
) -> Cells:
    """The counts (and weight sums) per window and combination of `dimensions`.

    The windows and the survey decide which responses are candidates. Under every method but
    respondent each stakeholder's latest candidate in each window is chosen first, once, and the
    other filters and the grouping apply to it as it was then: a person promoted from user to
    decision maker counts as a decision maker, a person who moved to another account counts
    there, and the groups of a breakdown add up to the total.

    The latest responses are read off the stakeholders' chains (app.services.chain), except
    with a survey filter, which changes whose answers are candidates; then, or with
    `use_chain=False`, each stakeholder's candidates are sorted, which gives the same counts.
    """
    windows = selection.windows
    order = sorted(range(len(windows)), key=lambda i: windows[i].start)
    if order != list(range(len(windows))) and _back_to_back([windows[i] for i in order]):
        # Back-to-back windows given out of order (a period and the one before it): count
        # them in order, so they take the single range scan, and give each its own index back.
        in_order = replace(selection, windows=[windows[i] for i in order])
        cells = await count(session, workspace_id, in_order, dimensions, use_chain=use_chain)
        return {(order[key[0]], *key[1:]): cell for key, cell in cells.items()}
    filters = selection.filters
    method = selection.method
    names = [column_name(d) for d in dimensions]
    chained = use_chain and method in _LATEST and filters.survey is None
    response_filters = _conditions(
        {
            "account_id": SurveyResponse.account_id,
            "role": SurveyResponse.role,
            "job_level": SurveyResponse.job_level,
            "department": department_key(SurveyResponse.department),
        },
        filters,
    )
    if method is Method.RESPONDENT or chained:
        chosen = _candidates(
            workspace_id, selection, chained=chained, where=response_filters
        ).subquery("chosen")
    else:
        prefilter: list[ColumnElement[bool]] = []
        if response_filters:
            # Only people with an answer in the slice can have their latest one there.
            first = min(w.start for w in selection.windows)
            last = max(w.end for w in selection.windows)
            in_slice = select(SurveyResponse.stakeholder_id).where(
                SurveyResponse.workspace_id == workspace_id,
                ~SurveyResponse.excluded,
                SurveyResponse.submitted_at >= first,
                SurveyResponse.submitted_at < last,
                *response_filters,
            )
            prefilter.append(SurveyResponse.stakeholder_id.in_(in_slice))
        inner = _candidates(workspace_id, selection, chained=False, where=prefilter).subquery(
            "candidates"
        )
        # Ties on submitted_at go to the response recorded last, then to the id, so the choice
        # never depends on the plan.
        chosen = (
            select(inner)
            .ext(distinct_on(inner.c.period, inner.c.stakeholder_id))
            .order_by(
                inner.c.period,
                inner.c.stakeholder_id,
                inner.c.submitted_at.desc(),
                inner.c.created_at.desc(),
                inner.c.id.desc(),
            )
            .subquery("chosen")
        )

    needs_account = (
        filters.segment is not None
        or filters.industry is not None
        or bool(ACCOUNT_DIMENSIONS.intersection(dimensions))
        or selection.by_revenue
    )
    columns: dict[str, Any] = {
        "period": chosen.c.period,
        "score": chosen.c.score,
        "account_id": chosen.c.account_id,
        "role": chosen.c.role,
        "job_level": chosen.c.job_level,
        "department": chosen.c.department,
        "survey": chosen.c.survey,
    }
    rows = select().select_from(chosen)
    if needs_account:
        rows = rows.join(
            Account,
            and_(Account.workspace_id == workspace_id, Account.id == chosen.c.account_id),
        )
        columns |= {
            "segment": Account.segment,
            "industry": Account.industry,
            "revenue": Account.annual_revenue,
        }
    if selection.weighting is not None:
        columns["weight"] = _weight(chosen.c.role, chosen.c.job_level, selection.weighting)
    if method is Method.DECISION_MAKER_FIRST:
        tier = case(
            {k: literal(v) for k, v in _TIER.items()}, value=chosen.c.role, else_=literal(3)
        )
        columns["tier"] = tier
        columns["top_tier"] = func.min(tier).over(
            partition_by=[chosen.c.period, chosen.c.account_id]
        )
    filtered = (
        rows.add_columns(*[c.label(n) for n, c in columns.items()])
        .where(*_conditions(columns, filters))
        .subquery("filtered")
    )
    where: list[ColumnElement[bool]] = []
    if method is Method.DECISION_MAKER_FIRST:
        # Decision makers' answers if the account has any, else influencers', else everyone's.
        where.append(filtered.c.tier == filtered.c.top_tier)
    if method is Method.ACCOUNT_AS_UNIT:
        return await accounts_as_units(
            session,
            filtered,
            names,
            where,
            weighted=selection.weighting is not None,
            by_revenue=selection.by_revenue,
        )
    return await tally_rows(
        session, filtered, names, where, weighted=selection.weighting is not None
    )
