"""Counted cells: the SQL aggregate over chosen answers, and sums of its cells.

A cell is one window's counts (and weight sums) for one combination of breakdown values.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Numeric, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.offload import off_loop
from app.scoring import Category, Change, Tally, WeightedTally, compare, compare_weighted
from app.sql import is_category


@dataclass(frozen=True, slots=True)
class Cell:
    tally: Tally = field(default_factory=Tally)
    weighted: WeightedTally | None = None
    without_revenue: frozenset[str] = frozenset()

    @property
    def nps(self) -> float | None:
        """The score a client sees: the weighted one under a weighted method."""
        return self.tally.nps if self.weighted is None else self.weighted.nps


def change_between(current: Cell, other: Cell, *, confidence: float) -> Change | None:
    """current minus other: the difference of the displayed scores (the weighted ones under a
    weighted method), tested on the adjusted centres (of the pseudo-counts when weighted)."""
    if current.weighted is not None and other.weighted is not None:
        return compare_weighted(current.weighted, other.weighted, confidence=confidence)
    return compare(current.tally, other.tally, confidence=confidence)


# Keys are (window index, *dimension values).
Cells = dict[tuple[Any, ...], Cell]


# The order of the sums in a row: the order of Tally's fields.
TALLY_ORDER = (Category.PROMOTER, Category.PASSIVE, Category.DETRACTOR)


def category_sums(value: Any, score: Any) -> list[ColumnElement[Any]]:
    """Sums of `value` over the rows of each category, in TALLY_ORDER."""
    return [
        func.coalesce(func.sum(value).filter(is_category(score, category)), 0)
        for category in TALLY_ORDER
    ]


async def tally_rows(
    session: AsyncSession,
    rows: Any,
    names: Sequence[str],
    where: Sequence[ColumnElement[bool]],
    *,
    weighted: bool,
) -> Cells:
    group = [rows.c.period, *[rows.c[n] for n in names]]
    sums = category_sums(literal(1), rows.c.score)
    if weighted:
        sums += [
            *category_sums(rows.c.weight, rows.c.score),
            func.sum(rows.c.weight * rows.c.weight),
        ]
    query = select(*group, *sums).where(*where).group_by(*group)
    width = len(group)
    rows_read = (await session.execute(query)).all()

    def build() -> Cells:
        cells: Cells = {}
        for row in rows_read:
            tally = Tally(int(row[width]), int(row[width + 1]), int(row[width + 2]))
            weights = None
            if weighted:
                weights = WeightedTally(*(float(v) for v in row[width + 3 : width + 7]))
            cells[tuple(row[:width])] = Cell(tally, weights)
        return cells

    # A trend by account is tens of thousands of cells (app.offload).
    return await off_loop(build, items=len(rows_read))


async def accounts_as_units(
    session: AsyncSession,
    rows: Any,
    names: Sequence[str],
    where: Sequence[ColumnElement[bool]],
    *,
    weighted: bool,
    by_revenue: bool,
) -> Cells:
    """Each account once: its (weighted) mean score classified with the score thresholds."""
    weight = rows.c.weight if weighted else literal(1)
    per_account = [rows.c.period, rows.c.account_id, *[rows.c[n] for n in names]]
    mean = func.sum(weight * rows.c.score) / func.sum(weight)
    revenue = rows.c.revenue if by_revenue else literal(None, Numeric)
    accounts = (
        select(*per_account, mean.label("mean"), func.max(revenue).label("revenue"))
        .where(*where)
        .group_by(*per_account)
        .subquery("accounts")
    )
    group = [accounts.c.period, *[accounts.c[n] for n in names]]
    # The mean of a 0-10 score is classified like a score: 8.5 is a passive account.
    score = accounts.c.mean
    sums = category_sums(literal(1), score)
    has_revenue = accounts.c.revenue > 0
    if by_revenue:
        sums += [
            *category_sums(case((has_revenue, accounts.c.revenue), else_=None), score),
            func.coalesce(func.sum(accounts.c.revenue * accounts.c.revenue), 0),
            func.array_agg(accounts.c.account_id).filter(~func.coalesce(has_revenue, False)),
        ]
    query = select(*group, *sums).group_by(*group)
    width = len(group)
    cells: Cells = {}
    for row in (await session.execute(query)).all():
        tally = Tally(int(row[width]), int(row[width + 1]), int(row[width + 2]))
        if not by_revenue:
            cells[tuple(row[:width])] = Cell(tally)
            continue
        weights = WeightedTally(*(float(v) for v in row[width + 3 : width + 7]))
        cells[tuple(row[:width])] = Cell(tally, weights, frozenset(row[width + 7] or ()))
    return cells


def combine(cells: Iterable[Cell]) -> Cell:
    """The sum of cells, added up as plain numbers (a breakdown may have thousands)."""
    counts = [0, 0, 0]
    weights: list[float] | None = None
    missing: set[str] = set()
    for cell in cells:
        tally = cell.tally
        counts[0] += tally.promoters
        counts[1] += tally.passives
        counts[2] += tally.detractors
        if cell.weighted is not None:
            w = cell.weighted
            weights = weights or [0.0, 0.0, 0.0, 0.0]
            weights[0] += w.promoters
            weights[1] += w.passives
            weights[2] += w.detractors
            weights[3] += w.sum_sq
        missing |= cell.without_revenue
    return Cell(
        Tally(*counts),
        None if weights is None else WeightedTally(*weights),
        frozenset(missing),
    )


def total(cells: Cells, period: int = 0) -> Cell:
    return combine(c for k, c in cells.items() if k[0] == period)


def marginal(cells: Cells, position: int, period: int = 0) -> dict[Any, Cell]:
    """The cells of one window summed over every dimension but the one at `position`."""
    grouped: dict[Any, list[Cell]] = {}
    for key, cell in cells.items():
        if key[0] == period:
            grouped.setdefault(key[position + 1], []).append(cell)
    return {k: group[0] if len(group) == 1 else combine(group) for k, group in grouped.items()}
