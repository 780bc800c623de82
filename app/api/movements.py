"""Movements: stakeholders whose new answer falls in another category than their previous one."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.accounts import AccountId
from app.api.auth import ReadAuth
from app.api.deps import Cursor, Limit
from app.api.report_tags import REVALIDATE, TAGGED_DOCS
from app.api.score_params import WindowDep
from app.bodies import StrictRoute
from app.db import ReadSessionDep
from app.models import Role
from app.pagination import DEFAULT_LIMIT
from app.presenters.movements import account_movements_read, movement_read
from app.schemas.base import ID_PATTERN, Page
from app.schemas.movements import AccountMovementsReport, MovementRead
from app.scoring import Direction
from app.services import accounts, movements
from app.services.movements import MovementFilters

router = APIRouter(prefix="/v1", tags=["movements"], route_class=StrictRoute)

Survey = Annotated[
    str | None, Query(min_length=1, max_length=100, description="both answers from this survey")
]


@router.get(
    "/movements",
    response_model=Page[MovementRead],
    operation_id="list_movements",
    dependencies=[REVALIDATE],
    responses=TAGGED_DOCS,
)
async def list_movements(
    session: ReadSessionDep,
    auth: ReadAuth,
    requested: WindowDep,
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
    window = requested.resolve()
    filters = MovementFilters(
        account_id=account_id,
        roles=None if role is None else (role,),
        direction=direction,
        survey=survey,
    )
    rows, next_cursor = await movements.list_movements(
        session, auth.workspace_id, window=window, filters=filters, limit=limit, cursor=cursor
    )
    return Page(data=[movement_read(m) for m in rows], next_cursor=next_cursor)


@router.get(
    "/accounts/{account_id}/movements",
    response_model=AccountMovementsReport,
    operation_id="get_account_movements",
    dependencies=[REVALIDATE],
    responses=TAGGED_DOCS,
    tags=["accounts"],
)
async def get_account_movements(
    account_id: AccountId,
    session: ReadSessionDep,
    auth: ReadAuth,
    requested: WindowDep,
    survey: Survey = None,
) -> AccountMovementsReport:
    """One account's movements in the window: counts by transition, climbers and fallers."""
    await accounts.get_account(session, auth.workspace_id, account_id)
    window = requested.resolve()
    summary = await movements.account_movements(
        session, auth.workspace_id, account_id, window=window, survey=survey
    )
    return account_movements_read(account_id, window, summary)
