"""Movements: stakeholders whose new answer falls in another category than their previous one."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.accounts import AccountId
from app.api.deps import Cursor, Limit, ReadAuth
from app.api.nps import _window
from app.api.score_params import From, To
from app.db import ReadSessionDep
from app.models import Role
from app.pagination import DEFAULT_LIMIT
from app.schemas.analytics import (
    AccountMovementsReport,
    AnswerRead,
    MovementRead,
    NetMoverRead,
    TransitionRead,
)
from app.schemas.base import ID_PATTERN, Page
from app.services import accounts, movements
from app.services.movements import Answer, Direction, Movement, MovementFilters, NetMove

router = APIRouter(prefix="/v1", tags=["movements"])

Survey = Annotated[
    str | None, Query(min_length=1, max_length=100, description="both answers from this survey")
]


def _answer(answer: Answer) -> AnswerRead:
    return AnswerRead(
        response_id=answer.response_id,
        score=answer.score,
        category=answer.category,
        submitted_at=answer.submitted_at,
    )


def _movement(m: Movement) -> MovementRead:
    return MovementRead(
        stakeholder_id=m.stakeholder_id,
        account_id=m.account_id,
        role=m.role,
        job_level=m.job_level,
        direction=m.direction,
        from_=_answer(m.before),
        to=_answer(m.after),
    )


def _net(net: NetMove) -> NetMoverRead:
    return NetMoverRead(
        stakeholder_id=net.stakeholder_id,
        role=net.role,
        from_=_answer(net.before),
        to=_answer(net.after),
    )


@router.get("/movements", response_model=Page[MovementRead], operation_id="list_movements")
async def list_movements(
    session: ReadSessionDep,
    auth: ReadAuth,
    from_: From = None,
    to: To = None,
    account_id: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="the new answer's account")
    ] = None,
    role: Annotated[Role | None, Query(description="the new answer's role")] = None,
    direction: Direction | None = None,
    survey: Survey = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[MovementRead]:
    """Movements whose new answer falls in the window, newest first."""
    window = _window(from_, to)
    filters = MovementFilters(
        account_id=account_id,
        roles=None if role is None else (role,),
        direction=direction,
        survey=survey,
    )
    rows, next_cursor = await movements.list_movements(
        session, auth.workspace_id, window=window, filters=filters, limit=limit, cursor=cursor
    )
    return Page(data=[_movement(m) for m in rows], next_cursor=next_cursor)


@router.get(
    "/accounts/{account_id}/movements",
    response_model=AccountMovementsReport,
    operation_id="get_account_movements",
    tags=["accounts"],
)
async def get_account_movements(
    account_id: AccountId,
    session: ReadSessionDep,
    auth: ReadAuth,
    from_: From = None,
    to: To = None,
    survey: Survey = None,
) -> AccountMovementsReport:
    """One account's movements in the window: counts by transition, climbers and fallers."""
    await accounts.get_account(session, auth.workspace_id, account_id)
    window = _window(from_, to)
    summary = await movements.account_movements(
        session, auth.workspace_id, account_id, window=window, survey=survey
    )
    return AccountMovementsReport(
        account_id=account_id,
        from_=window.start,
        to=window.end,
        up=summary.up,
        down=summary.down,
        transitions=[
            TransitionRead(from_=t.before, to=t.after, count=t.count) for t in summary.transitions
        ],
        climbers=[_net(n) for n in summary.climbers],
        fallers=[_net(n) for n in summary.fallers],
    )
