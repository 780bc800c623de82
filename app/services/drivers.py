"""Key drivers: the answers /v1/nps counts, reduced in SQL to one moment matrix per account.

Three statements, none shipping more than a row per account and group: the attribute keys (from
the survey's catalog, else the numeric keys found on the answers), each attribute's own figures
per group (n, mean, its correlation with the score), and, over the rows that rate every attribute
kept (listwise deletion), Σw·z·zᵀ per account for z = (1, score, ratings). app.analysis.drivers
does the math on those, in a worker thread.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Float, and_, case, cast, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.analysis.drivers import MAX_ATTRIBUTES, Decomposition
from app.errors import invalid_query
from app.services.counting import counted_answers
from app.services.selection import Dimension, Selection, column_name
from app.services.surveys import find_definition

DRIVER_GROUPS = (Dimension.ROLE, Dimension.JOB_LEVEL, Dimension.DEPARTMENT, Dimension.SEGMENT)
MAX_GROUPS = 100
# Attributes answered by fewer responses than this (in a model's slice) are left out.
MIN_ANSWERS = 10
# A JSON number beyond this is not a rating (and would overflow the squares).
RATING_BOUND = 1e6
_TOTAL = "__total__"


@dataclass(frozen=True, slots=True)
class Catalog:
    keys: tuple[str, ...]
    scales: dict[str, int]  # the catalog's scale per key; empty for keys found on answers
    source: str  # "catalog" or "responses"


@dataclass(slots=True)
class Marginal:
    """One attribute's own figures in one slice: Σw, Σwx, Σwx², Σwy, Σwy², Σwxy and n."""

    n: int = 0
    sums: tuple[float, ...] = (0.0,) * 6


@dataclass(slots=True)
class Slice:
    """What one model (the total, or one group) is fitted on."""

    key: str | None
    rows: int = 0
    marginals: dict[str, Marginal] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    excluded: list[tuple[str, str, str]] = field(default_factory=list)
    # Per account: (rows, moment matrix over (1, y, kept…)).
    accounts: list[tuple[int, Any]] = field(default_factory=list)


def _rating(attributes: Any, key: str) -> ColumnElement[Any]:
    value = attributes[key]
    number = cast(value.astext, Float)
    return case(
        (
            and_(
                func.jsonb_typeof(value) == "number",
                func.abs(cast(value.astext, Float)) <= RATING_BOUND,
            ),
            number,
        ),
        else_=None,
    )


async def attribute_catalog(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    selection: Selection,
    decomposition: Decomposition,
    requested: Sequence[str] | None,
) -> Catalog:
    """The survey's rating attributes when the `survey` filter names a definition with a
    catalog, else the numeric keys on the answers; `requested` (the `attribute` parameter)
    narrows either. More than the method's bound is a 422 on `attribute`."""
    bound = MAX_ATTRIBUTES[decomposition]
    definition = await find_definition(session, workspace_id, selection.filters.survey)
    if requested and (definition is None or not definition.attributes):
        # Named by the caller: no need to look for the keys on the answers.
        keys: tuple[str, ...] = tuple(dict.fromkeys(requested))
        scales: dict[str, int] = {}
        source = "responses"
    elif definition is not None and definition.attributes:
        scales = {a.key: a.scale for a in definition.attributes}
        keys = tuple(scales)
        source = "catalog"
    else:
        rows, where = counted_answers(workspace_id, selection)
        entry = func.jsonb_each(rows.c.attributes).table_valued("key", "value").lateral("entry")
        query = (
            select(entry.c.key)
            .select_from(rows)
            .join(entry, true())
            .where(*where, func.jsonb_typeof(entry.c.value) == "number")
            .distinct()
            .order_by(entry.c.key)
        )
        keys = tuple((await session.scalars(query)).all())
        scales = {}
        source = "responses"
    if requested:
        keys = tuple(dict.fromkeys(requested))
    if len(keys) > bound:
        shown = ", ".join(keys[:40]) + (", ..." if len(keys) > 40 else "")
        raise invalid_query(
            "attribute",
            f"{len(keys)} attributes ({shown}); {decomposition.value} takes at most {bound}: "
            "name the ones to analyse with `attribute` (repeatable)",
            f"at most {bound} attributes for {decomposition.value}",
        )
    return Catalog(keys, scales, source)


async def gather(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    selection: Selection,
    catalog: Catalog,
    group_by: Dimension | None,
) -> list[Slice]:
    """The total's slice first, then each group's, sorted by key, with their moments."""
    dims = () if group_by is None else (group_by,)
    rows, where = counted_answers(workspace_id, selection, dims)
    weighted = selection.weighting is not None
    group = rows.c[column_name(group_by)] if group_by is not None else literal(_TOTAL)
    keys = catalog.keys
    rated = (
        select(
            group.label("g"),
            rows.c.account_id.label("account_id"),
            cast(rows.c.score, Float).label("y"),
            (cast(rows.c.weight, Float) if weighted else literal(1.0, Float)).label("w"),
            *(_rating(rows.c.attributes, key).label(f"x{i}") for i, key in enumerate(keys)),
        )
        .select_from(rows)
        .where(*where)
        .subquery("rated")
    )
    slices = await _marginals(session, rated, len(keys), keys, grouped=group_by is not None)
    if len(slices) > MAX_GROUPS + 1:
        raise invalid_query(
            "group_by",
            f"{len(slices) - 1} groups: drivers are fitted for at most {MAX_GROUPS}; narrow the "
            "slice with a filter",
        )
    for s in slices:
        _choose_attributes(s, keys)
    await _account_moments(session, rated, keys, slices[:1], grouped=False)
    if group_by is not None:
        await _account_moments(session, rated, keys, slices[1:], grouped=True)
    return slices


async def _marginals(
    session: AsyncSession, rated: Any, p: int, keys: Sequence[str], *, grouped: bool
) -> list[Slice]:
    y, w = rated.c.y, rated.c.w
    columns: list[Any] = [func.count()]
    for i in range(p):
        x = rated.c[f"x{i}"]
        answered = x.isnot(None)
        columns += [
            func.count(x),
            func.sum(w).filter(answered),
            func.sum(w * x),
            func.sum(w * x * x),
            func.sum(w * y).filter(answered),
            func.sum(w * y * y).filter(answered),
            func.sum(w * x * y),
        ]
    if grouped:
        query = select(func.grouping(rated.c.g), rated.c.g, *columns).group_by(
            func.rollup(rated.c.g)
        )
    else:
        query = select(literal(1), rated.c.g, *columns).group_by(rated.c.g)
    total = Slice(None)
    groups: list[Slice] = []
    for row in (await session.execute(query)).all():
        s = total if row[0] == 1 else Slice(row[1])
        if s is not total:
            groups.append(s)
        s.rows = int(row[2])
        for i, key in enumerate(keys):
            chunk = row[3 + 7 * i : 10 + 7 * i]
            s.marginals[key] = Marginal(
                int(chunk[0]), tuple(0.0 if v is None else float(v) for v in chunk[1:])
            )
    if not grouped:
        for key in keys:
            total.marginals.setdefault(key, Marginal())
    for s in [total, *groups]:
        for key in keys:
            s.marginals.setdefault(key, Marginal())
    return [total, *sorted(groups, key=lambda s: (s.key is None, str(s.key)))]


def _choose_attributes(s: Slice, keys: Sequence[str]) -> None:
    for key in keys:
        m = s.marginals[key]
        weight, sx, sxx = m.sums[0], m.sums[1], m.sums[2]
        if m.n < MIN_ANSWERS or weight <= 0:
            s.excluded.append(
                (key, "too_few_answers", f"{m.n} answers rate it, fewer than {MIN_ANSWERS}")
            )
        elif sxx / weight - (sx / weight) ** 2 <= 1e-12 * max(sxx / weight, 1.0):
            s.excluded.append((key, "constant", "every answer rates it the same"))
        else:
            s.kept.append(key)


async def _account_moments(
    session: AsyncSession,
    rated: Any,
    keys: Sequence[str],
    slices: Sequence[Slice],
    *,
    grouped: bool,
) -> None:
    """Σw·z·zᵀ per account (and group) over the rows that rate each slice's kept attributes."""
    used = sorted({keys.index(k) for s in slices for k in s.kept})
    if not slices or not used:
        return
    x = {i: rated.c[f"x{i}"] for i in used}

    def complete(s: Slice) -> ColumnElement[bool]:
        return and_(true(), *(x[keys.index(k)].isnot(None) for k in s.kept))

    if grouped:
        condition: ColumnElement[bool] = case(
            *((rated.c.g == s.key, complete(s)) for s in slices if s.key is not None),
            else_=and_(rated.c.g.is_(None), complete(next(s for s in slices if s.key is None)))
            if any(s.key is None for s in slices)
            else literal(False),
        )
    else:
        condition = complete(slices[0])
    y, w = rated.c.y, rated.c.w
    z = [literal(1.0, Float), y, *(x[i] for i in used)]
    size = len(z)
    sums = [func.sum(w * z[a] * z[b]) for a in range(size) for b in range(a, size)]
    query = (
        select(rated.c.g, rated.c.account_id, func.count(), *sums)
        .where(condition)
        .group_by(rated.c.g, rated.c.account_id)
        .order_by(rated.c.g, rated.c.account_id)
    )
    by_key = {s.key: s for s in slices} if grouped else {}
    upper = np.triu_indices(size)
    for row in (await session.execute(query)).all():
        s = by_key.get(row[0]) if grouped else slices[0]
        if s is None:
            continue
        full = np.zeros((size, size))
        full[upper] = [float(v) for v in row[3:]]
        full = full + np.triu(full, 1).T
        index = [0, 1, *(2 + used.index(keys.index(k)) for k in s.kept)]
        s.accounts.append((int(row[2]), full[np.ix_(index, index)]))
