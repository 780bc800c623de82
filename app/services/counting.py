"""Counting a Selection: one SQL statement counts categories and sums weights; app.scoring does
the math on the result.

One statement answers a whole report: every window (a trend's buckets) and every cell of a
breakdown, so they all come from one snapshot. It is built in three steps:

1. **Candidates**: the answers of each window, once per window they fall in. Three strategies,
   picked by the shape of the windows: `_branch_per_window` (a few windows, each its own index
   plan), `_range_scan` (back-to-back buckets, one scan with the bucket found by binary search)
   and `_window_join` (many overlapping windows, a join with the table of their bounds).
2. **Choosing**: under every method but respondent each stakeholder's latest candidate in each
   window, read off the chain (`_latest_off_chain`) or, with a survey filter, by sorting
   (`_latest_by_sort`).
3. **Cutting and summing**: the filters and groups apply to each chosen answer as it was then;
   app.services.cells sums the cells.
"""

import itertools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
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

from app.models import Account, Role, SurveyResponse
from app.scoring import Method
from app.services import tallies
from app.services.cells import Cells, accounts_as_units, tally_rows
from app.services.selection import (
    ACCOUNT_DIMENSIONS,
    Dimension,
    Filters,
    Selection,
    Weighting,
    Window,
    column_name,
)
from app.sql import answer_order, department_key

_LATEST = frozenset(Method) - {Method.RESPONDENT}
_INSTANTS = ARRAY(DateTime(timezone=True))
_TIER = {Role.DECISION_MAKER.value: 1, Role.INFLUENCER.value: 2}
# Up to this many windows, each gets its own branch of a UNION ALL and so its own index plan
# (a period and the one before it); more (a trend's buckets) share one scan.
FEW_WINDOWS = 4


def _number(value: float) -> ColumnElement[Decimal]:
    # Weights go in as exact decimals, so sums and means in SQL have no float error.
    return literal(Decimal(repr(float(value))), Numeric)


def _weight(role: Any, job_level: Any, weighting: Weighting) -> ColumnElement[Any]:
    def lookup(column: Any, weights: Mapping[str, float]) -> ColumnElement[Any]:
        return case({k: _number(w) for k, w in weights.items()}, value=column, else_=_number(1))

    return lookup(role, weighting.role) * lookup(job_level, weighting.job_level)


def _conditions(columns: Mapping[str, Any], filters: Filters) -> list[ColumnElement[bool]]:
    return [columns[name] == value for name, value in filters.wanted().items() if name in columns]


def _back_to_back(windows: Sequence[Window]) -> bool:
    return all(a.end == b.start for a, b in itertools.pairwise(windows))


# Candidates: three strategies, one per shape of the windows.


def _branch_per_window(
    windows: Sequence[Window], columns: list[Any], *, chained: bool, finish: Any
) -> Any:
    """A UNION ALL with a branch per window: each window gets its own index plan."""
    branches = []
    for index, window in enumerate(windows):
        branch = select(literal(index).label("period"), *columns).where(
            SurveyResponse.submitted_at >= window.start, SurveyResponse.submitted_at < window.end
        )
        if chained:
            branch = branch.where(SurveyResponse.superseded_at >= window.end)
        branches.append(finish(branch))
    return branches[0] if len(branches) == 1 else union_all(*branches)


def _range_scan(
    windows: Sequence[Window], columns: list[Any], *, chained: bool, finish: Any
) -> Any:
    """Back-to-back buckets (a trend without rolling_days): one range scan of the whole span,
    each answer's bucket found by binary search in the bounds."""
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


def _window_join(
    windows: Sequence[Window], columns: list[Any], *, chained: bool, finish: Any
) -> Any:
    """Overlapping windows (rolling trends): a join with the table of their bounds."""
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


# The columns an analysis may ask for besides the score and its groups (counted_answers).
_EXTRA: dict[str, Any] = {
    "attributes": SurveyResponse.attributes,
    "comment": SurveyResponse.comment,
    "answered_at": SurveyResponse.submitted_at.label("answered_at"),
}


def _candidates(
    workspace_id: uuid.UUID,
    selection: Selection,
    *,
    chained: bool,
    where: Sequence[ColumnElement[bool]] = (),
    extra: tuple[str, ...] = (),
) -> Any:
    """Each response of the windows (once per window it falls in), with what it can be cut by.

    `chained`: only each stakeholder's latest response in the window, read off the chain.
    `extra`: more of its columns (`attributes`: driver ratings, `comment`), for the analyses.
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
    columns += [_EXTRA[name] for name in extra]
    if selection.method in _LATEST and not chained:
        columns += answer_order(SurveyResponse)

    def finish(query: Select[Any]) -> Select[Any]:
        query = query.where(
            SurveyResponse.workspace_id == workspace_id, ~SurveyResponse.excluded, *where
        )
        if selection.filters.survey is not None:
            query = query.where(SurveyResponse.survey == selection.filters.survey)
        return query

    windows = selection.windows
    if len(windows) <= FEW_WINDOWS:
        strategy = _branch_per_window
    elif _back_to_back(windows):
        strategy = _range_scan
    else:
        strategy = _window_join
    return strategy(windows, columns, chained=chained, finish=finish)


# Choosing: every candidate (respondent) or each stakeholder's latest in each window.


def _answer_filters(filters: Filters) -> list[ColumnElement[bool]]:
    """The filters that the stored answer itself can be tested by."""
    return _conditions(
        {
            "account_id": SurveyResponse.account_id,
            "role": SurveyResponse.role,
            "job_level": SurveyResponse.job_level,
            "department": department_key(SurveyResponse.department),
        },
        filters,
    )


def _every_candidate(
    workspace_id: uuid.UUID, selection: Selection, *, extra: tuple[str, ...] = ()
) -> Any:
    """Respondent: every answer of the window that passes the filters."""
    where = _answer_filters(selection.filters)
    return _candidates(workspace_id, selection, chained=False, where=where, extra=extra).subquery(
        "chosen"
    )


def _latest_off_chain(
    workspace_id: uuid.UUID, selection: Selection, *, extra: tuple[str, ...] = ()
) -> Any:
    """Each stakeholder's latest answer in each window, read off the chain (app.services.chain):
    from <= submitted_at < to <= superseded_at, then filtered as it was then."""
    where = _answer_filters(selection.filters)
    return _candidates(workspace_id, selection, chained=True, where=where, extra=extra).subquery(
        "chosen"
    )


def _latest_by_sort(
    workspace_id: uuid.UUID, selection: Selection, *, extra: tuple[str, ...] = ()
) -> Any:
    """Each stakeholder's latest candidate in each window, by sorting their candidates."""
    answer_filters = _answer_filters(selection.filters)
    prefilter: list[ColumnElement[bool]] = []
    if answer_filters:
        # Only people with an answer in the slice can have their latest one there.
        first = min(w.start for w in selection.windows)
        last = max(w.end for w in selection.windows)
        in_slice = select(SurveyResponse.stakeholder_id).where(
            SurveyResponse.workspace_id == workspace_id,
            ~SurveyResponse.excluded,
            SurveyResponse.submitted_at >= first,
            SurveyResponse.submitted_at < last,
            *answer_filters,
        )
        prefilter.append(SurveyResponse.stakeholder_id.in_(in_slice))
    inner = _candidates(
        workspace_id, selection, chained=False, where=prefilter, extra=extra
    ).subquery("candidates")
    return (
        select(inner)
        .ext(distinct_on(inner.c.period, inner.c.stakeholder_id))
        .order_by(
            inner.c.period,
            inner.c.stakeholder_id,
            *(column.desc() for column in answer_order(inner)),
        )
        .subquery("chosen")
    )


async def count(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    selection: Selection,
    dimensions: Sequence[Dimension] = (),
    *,
    use_chain: bool = True,
    pre_counted: bool = True,
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

    Windows that are whole UTC calendar buckets are read from the pre-counted tallies where
    those are exact (app.services.tallies); `pre_counted=False` counts the answers.
    """
    windows = selection.windows
    order = sorted(range(len(windows)), key=lambda i: windows[i].start)
    if order != list(range(len(windows))) and _back_to_back([windows[i] for i in order]):
        # Back-to-back windows given out of order (a period and the one before it): count
        # them in order, so they take the single range scan, and give each its own index back.
        in_order = replace(selection, windows=[windows[i] for i in order])
        cells = await count(
            session,
            workspace_id,
            in_order,
            dimensions,
            use_chain=use_chain,
            pre_counted=pre_counted,
        )
        return {(order[key[0]], *key[1:]): cell for key, cell in cells.items()}
    interval = tallies.interval_of(selection, dimensions) if use_chain and pre_counted else None
    if interval is None:
        chosen = _chosen(workspace_id, selection, use_chain=use_chain)
        return await _cut_and_sum(session, workspace_id, selection, chosen, dimensions)
    return await tallies.count(session, workspace_id, selection, dimensions, interval)


def _chosen(
    workspace_id: uuid.UUID,
    selection: Selection,
    *,
    use_chain: bool = True,
    extra: tuple[str, ...] = (),
) -> Any:
    if selection.method is Method.RESPONDENT:
        return _every_candidate(workspace_id, selection, extra=extra)
    if use_chain and selection.filters.survey is None:
        return _latest_off_chain(workspace_id, selection, extra=extra)
    return _latest_by_sort(workspace_id, selection, extra=extra)


def counted_answers(
    workspace_id: uuid.UUID,
    selection: Selection,
    dimensions: Sequence[Dimension] = (),
    *,
    extra: tuple[str, ...] = ("attributes",),
) -> tuple[Any, list[ColumnElement[bool]]]:
    """The answers a score of one window counts, one row each, with their driver ratings
    (`attributes`, or the `extra` columns named: `comment`, `answered_at`, when it was given),
    their groups and, under a weighted method, their `weight`: a subquery and the conditions its
    rows must meet. The path `count` takes, for analyses that need more than counts of
    categories (app.services.drivers, themes, perception). Not for account_as_unit."""
    assert selection.method is not Method.ACCOUNT_AS_UNIT
    chosen = _chosen(workspace_id, selection, extra=extra)
    return _filtered(workspace_id, selection, chosen, dimensions)


def _filtered(
    workspace_id: uuid.UUID,
    selection: Selection,
    chosen: Any,
    dimensions: Sequence[Dimension],
) -> tuple[Any, list[ColumnElement[bool]]]:
    """The chosen answers cut by the filters, with their groups, and the method's last
    condition (decision_maker_first's tier)."""
    filters = selection.filters
    method = selection.method
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
    for name in _EXTRA:
        if name in chosen.c:
            columns[name] = chosen.c[name]
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
    return filtered, where


async def _cut_and_sum(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    selection: Selection,
    chosen: Any,
    dimensions: Sequence[Dimension],
) -> Cells:
    """The filters and groups over the chosen answers, then the sums per cell."""
    filtered, where = _filtered(workspace_id, selection, chosen, dimensions)
    names = [column_name(d) for d in dimensions]
    method = selection.method
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
