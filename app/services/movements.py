"""Movements: a stakeholder's answer that falls in another category than their previous one.

Derived from the stored responses on every call, so a late-arriving older answer re-links the
chain and an excluded one drops out of it.
"""

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, literal_column, select, tuple_
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.models import JobLevel, Role, SurveyResponse
from app.pagination import aware, decode_key, encode_key
from app.scoring import RANKS, Category, Direction, classify, rises
from app.services.selection import Window
from app.sql import answer_order, category_rank


@dataclass(frozen=True, slots=True)
class Answer:
    response_id: uuid.UUID
    score: int
    submitted_at: datetime

    @property
    def category(self) -> Category:
        return classify(self.score)


@dataclass(frozen=True, slots=True)
class Movement:
    """`after` is the new answer (its account, role and job level); `before` the one it follows."""

    stakeholder_id: str
    account_id: str
    role: Role
    job_level: JobLevel
    before: Answer
    after: Answer

    @property
    def direction(self) -> Direction:
        return Direction.UP if rises(self.before.category, self.after.category) else Direction.DOWN


@dataclass(frozen=True, slots=True)
class MovementFilters:
    """Filters on the new answer (account, role, direction) and on both answers (survey)."""

    account_id: str | None = None
    roles: Collection[Role] | None = None
    direction: Direction | None = None
    survey: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    before: Category
    after: Category
    count: int


@dataclass(frozen=True, slots=True)
class NetMove:
    """A stakeholder's first movement's `before` and last movement's `after` in the window."""

    stakeholder_id: str
    role: Role
    before: Answer
    after: Answer


@dataclass(frozen=True, slots=True)
class AccountMovements:
    up: int
    down: int
    transitions: list[Transition]
    climbers: list[NetMove]
    fallers: list[NetMove]


def _movements(workspace_id: uuid.UUID, window: Window, filters: MovementFilters) -> Select[Any]:
    """One row per movement whose new answer is in the window and passes the filters."""
    # Only answers before the window's end can be a movement's either side; only people with an
    # answer in the window (passing the new-answer filters) can have a movement there.
    candidates: list[ColumnElement[bool]] = [
        SurveyResponse.workspace_id == workspace_id,
        ~SurveyResponse.excluded,
        SurveyResponse.submitted_at < window.end,
    ]
    if filters.survey is not None:
        candidates.append(SurveyResponse.survey == filters.survey)
    else:
        # Off the chain (app.services.chain): an answer in the window, or the one right before
        # the window's first, is exactly one whose next answer came at or after the window's
        # start. Older answers cannot be either side of a movement in the window.
        candidates.append(SurveyResponse.superseded_at >= window.start)
    movers = select(SurveyResponse.stakeholder_id).where(
        *candidates, *_new_answer(SurveyResponse, window, filters)
    )
    order = answer_order(SurveyResponse)
    rank = category_rank(SurveyResponse.score)

    def previous(column: Any) -> Any:
        return func.lag(column).over(partition_by=SurveyResponse.stakeholder_id, order_by=order)

    chain = (
        select(
            SurveyResponse.stakeholder_id,
            SurveyResponse.account_id,
            SurveyResponse.role,
            SurveyResponse.job_level,
            SurveyResponse.id,
            SurveyResponse.score,
            SurveyResponse.submitted_at,
            SurveyResponse.created_at,
            rank.label("rank"),
            previous(SurveyResponse.id).label("previous_id"),
            previous(SurveyResponse.score).label("previous_score"),
            previous(SurveyResponse.submitted_at).label("previous_submitted_at"),
            previous(rank).label("previous_rank"),
        )
        .where(*candidates, SurveyResponse.stakeholder_id.in_(movers))
        .subquery("chain")
    )
    c = chain.c
    # A first answer has no previous rank: NULL <> rank is not true, so it is no movement.
    moved = [*_new_answer(c, window, filters), c.rank != c.previous_rank]
    if filters.direction is Direction.UP:
        moved.append(c.rank > c.previous_rank)
    elif filters.direction is Direction.DOWN:
        moved.append(c.rank < c.previous_rank)
    return select(chain).where(*moved)


def _new_answer(c: Any, window: Window, filters: MovementFilters) -> list[ColumnElement[bool]]:
    # Every candidate is before the window's end already.
    wanted = [c.submitted_at >= window.start]
    if filters.account_id is not None:
        wanted.append(c.account_id == filters.account_id)
    if filters.roles is not None:
        wanted.append(c.role.in_(sorted(r.value for r in filters.roles)))
    return wanted


def _movement(row: Any) -> Movement:
    return Movement(
        stakeholder_id=row.stakeholder_id,
        account_id=row.account_id,
        role=Role(row.role),
        job_level=JobLevel(row.job_level),
        before=Answer(row.previous_id, row.previous_score, row.previous_submitted_at),
        after=Answer(row.id, row.score, row.submitted_at),
    )


def _encode_cursor(row: Any) -> str:
    return encode_key([row.submitted_at.isoformat(), row.created_at.isoformat(), str(row.id)])


def _decode_cursor(cursor: str) -> tuple[datetime, datetime, uuid.UUID]:
    def parse(values: list[Any]) -> tuple[datetime, datetime, uuid.UUID]:
        submitted, created, row_id = values
        return aware(submitted), aware(created), uuid.UUID(row_id)

    return decode_key(cursor, parse)


def movements_page(
    workspace_id: uuid.UUID,
    *,
    window: Window,
    filters: MovementFilters,
    limit: int,
    cursor: str | None = None,
) -> Select[Any]:
    """A page of movements read newest first: the window's answers in the page's order (from
    the window's index), each joined to its predecessor (one index look-up), kept while the two
    differ in category, until the page is full. Not every movement of the window numbered and
    sorted for each page: with two years of answers that took seconds for fifty rows."""
    r = aliased(SurveyResponse, name="answer")
    p = aliased(SurveyResponse, name="before")
    before = [
        p.workspace_id == workspace_id,
        p.stakeholder_id == r.stakeholder_id,
        ~p.excluded,
        tuple_(*answer_order(p)) < tuple_(*answer_order(r)),
    ]
    if filters.survey is not None:
        before.append(p.survey == filters.survey)
    else:
        # Off the chain (app.services.chain): the answers right before r are those it
        # superseded, so the look-up is an equality on the stakeholder's chain index.
        before.append(p.superseded_at == r.submitted_at)
    previous = (
        select(
            p.id.label("previous_id"),
            p.score.label("previous_score"),
            p.submitted_at.label("previous_submitted_at"),
            category_rank(p.score).label("previous_rank"),
        )
        .where(*before)
        .order_by(*(column.desc() for column in answer_order(p)))
        .limit(1)
        .lateral("previous")
    )
    rank = category_rank(r.score)
    moved = [rank != previous.c.previous_rank]
    if filters.direction is Direction.UP:
        moved.append(rank > previous.c.previous_rank)
    elif filters.direction is Direction.DOWN:
        moved.append(rank < previous.c.previous_rank)
    wanted = [
        r.workspace_id == workspace_id,
        ~r.excluded,
        r.submitted_at < window.end,
        *_new_answer(r, window, filters),
    ]
    if filters.survey is not None:
        wanted.append(r.survey == filters.survey)
    if cursor is not None:
        after = _decode_cursor(cursor)
        key = answer_order(r)
        bound = (literal(value, column.type) for value, column in zip(after, key, strict=True))
        wanted.append(tuple_(*key) < tuple_(*bound))
    return (
        select(
            r.stakeholder_id,
            r.account_id,
            r.role,
            r.job_level,
            r.id,
            r.score,
            r.submitted_at,
            r.created_at,
            rank.label("rank"),
            previous,
        )
        .select_from(r)
        .join(previous, literal(True))
        .where(*wanted, *moved)
        .order_by(*(column.desc() for column in answer_order(r)))
        .limit(limit)
    )


async def list_movements(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    window: Window,
    filters: MovementFilters,
    limit: int,
    cursor: str | None = None,
) -> tuple[list[Movement], str | None]:
    """One page of movements, newest new answer first, and the cursor of the next page."""
    query = movements_page(
        workspace_id, window=window, filters=filters, limit=limit + 1, cursor=cursor
    )
    rows = (await session.execute(query)).all()
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return [_movement(row) for row in rows[:limit]], next_cursor


async def downward_by_account(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    window: Window,
    roles: Collection[Role],
    account_id: str | None = None,
) -> dict[str, list[Movement]]:
    """The down movements in the window per account of their new answer (every account, or
    the one), newest first."""
    filters = MovementFilters(account_id=account_id, roles=roles, direction=Direction.DOWN)
    moves = _movements(workspace_id, window, filters).subquery("moves")
    query = select(moves).order_by(
        moves.c.account_id, *(column.desc() for column in answer_order(moves))
    )
    out: dict[str, list[Movement]] = {}
    for row in (await session.execute(query)).all():
        out.setdefault(row.account_id, []).append(_movement(row))
    return out


async def account_movements(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    account_id: str,
    *,
    window: Window,
    survey: str | None = None,
) -> AccountMovements:
    """Counts per transition and each mover's net change, from one grouping-sets aggregate."""
    filters = MovementFilters(account_id=account_id, survey=survey)
    m = _movements(workspace_id, window, filters).subquery("moves")
    order = answer_order(m)
    backwards = tuple(column.desc() for column in order)

    def first(column: Any, *by: Any) -> Any:
        return func.array_agg(aggregate_order_by(column, *by))[1]

    query = (
        select(
            func.grouping(m.c.stakeholder_id).label("per_transition"),
            m.c.stakeholder_id,
            m.c.previous_rank,
            m.c.rank,
            func.count().label("movements"),
            first(m.c.role, *backwards).label("role"),
            first(m.c.previous_id, *order).label("before_id"),
            first(m.c.previous_score, *order).label("before_score"),
            first(m.c.previous_submitted_at, *order).label("before_at"),
            first(m.c.id, *backwards).label("after_id"),
            first(m.c.score, *backwards).label("after_score"),
            first(m.c.submitted_at, *backwards).label("after_at"),
        )
        .group_by(
            func.grouping_sets(tuple_(m.c.stakeholder_id), tuple_(m.c.previous_rank, m.c.rank))
        )
        .order_by(m.c.previous_rank, m.c.rank, m.c.stakeholder_id)
    )
    transitions: list[Transition] = []
    climbers: list[NetMove] = []
    fallers: list[NetMove] = []
    for row in (await session.execute(query)).all():
        if row.per_transition:
            before, after = RANKS[row.previous_rank], RANKS[row.rank]
            transitions.append(Transition(before, after, row.movements))
            continue
        net = _net(row)
        if net.after.category != net.before.category:
            up = rises(net.before.category, net.after.category)
            (climbers if up else fallers).append(net)
    up_counts = [t.count for t in transitions if rises(t.before, t.after)]
    return AccountMovements(
        up=sum(up_counts),
        down=sum(t.count for t in transitions) - sum(up_counts),
        transitions=transitions,
        climbers=climbers,
        fallers=fallers,
    )


def _net(row: Any) -> NetMove:
    return NetMove(
        stakeholder_id=row.stakeholder_id,
        role=Role(row.role),
        before=Answer(row.before_id, row.before_score, row.before_at),
        after=Answer(row.after_id, row.after_score, row.after_at),
    )


async def previous_answer(session: AsyncSession, response: SurveyResponse) -> Answer | None:
    """The stakeholder's counted answer right before `response`, in the order every score and
    every movement uses (submitted_at, created_at, id); None before their first."""
    order = answer_order(SurveyResponse)
    here = (response.submitted_at, response.created_at, response.id)
    bound = (literal(value, column.type) for value, column in zip(here, order, strict=True))
    row = (
        await session.execute(
            select(SurveyResponse.id, SurveyResponse.score, SurveyResponse.submitted_at)
            .where(
                SurveyResponse.workspace_id == response.workspace_id,
                SurveyResponse.stakeholder_id == response.stakeholder_id,
                ~SurveyResponse.excluded,
                tuple_(*order) < tuple_(*bound),
            )
            .order_by(*(column.desc() for column in order))
            .limit(1)
        )
    ).first()
    return None if row is None else Answer(row.id, row.score, row.submitted_at)


async def is_latest(session: AsyncSession, response: SurveyResponse) -> bool:
    """Whether `response` is its stakeholder's latest counted answer: the end of their chain
    (app.services.chain), which ingest and corrections keep in step in their transaction."""
    latest = await session.scalar(
        select(SurveyResponse.superseded_at == literal_column("'infinity'::timestamptz")).where(
            SurveyResponse.workspace_id == response.workspace_id,
            SurveyResponse.id == response.id,
            ~SurveyResponse.excluded,
        )
    )
    return bool(latest)
