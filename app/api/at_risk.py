"""Accounts at risk, with reasons and evidence, largest revenue first."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.auth import ReadAuth
from app.api.deps import Cursor, Limit
from app.api.report_tags import REVALIDATE, TAGGED_DOCS
from app.api.score_params import AccountCountingDep, Text, WindowDep
from app.api.settings import WorkspaceSettingsDep
from app.bodies import StrictRoute
from app.db import ReadSessionDep
from app.pagination import DEFAULT_LIMIT
from app.presenters.at_risk import at_risk_page_read
from app.schemas.at_risk import AtRiskPage, Reason
from app.services.at_risk import find_at_risk
from app.services.risk_findings import Rules

# Registered before the accounts router, so `at-risk` is never read as an account id.
router = APIRouter(prefix="/v1/accounts", tags=["accounts"], route_class=StrictRoute)


@router.get(
    "/at-risk",
    response_model=AtRiskPage,
    operation_id="list_at_risk_accounts",
    dependencies=[REVALIDATE],
    responses=TAGGED_DOCS,
)
async def list_at_risk_accounts(
    session: ReadSessionDep,
    auth: ReadAuth,
    settings: WorkspaceSettingsDep,
    counting: AccountCountingDep,
    requested: WindowDep,
    reason: Annotated[
        list[Reason] | None, Query(description="only accounts with one of these reasons")
    ] = None,
    segment: Text = None,
    industry: Text = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> AtRiskPage:
    """Accounts with a reason for concern, each with its evidence, largest revenue first."""
    counting.require_per_account()
    window = requested.resolve()
    page = await find_at_risk(
        session,
        auth.workspace_id,
        window=window,
        counting=counting,
        rules=Rules.of(settings.at_risk),
        segment=segment,
        industry=industry,
        reasons=reason,
        limit=limit,
        cursor=cursor,
    )
    return at_risk_page_read(page, counting)
