"""Coverage: who at an account was heard from, and which share of the portfolio answered."""

from fastapi import APIRouter

from app.api.accounts import AccountId
from app.api.auth import ReadAuth
from app.api.deps import utcnow
from app.api.report_tags import REVALIDATE, TAGGED_DOCS
from app.api.score_params import Text, WindowDep
from app.bodies import StrictRoute
from app.db import ReadSessionDep
from app.presenters.coverage import account_coverage_read, coverage_read
from app.schemas.coverage import AccountCoverageReport, CoverageReport
from app.services import accounts
from app.services.coverage import account_coverage, portfolio_coverage
from app.services.rates import last_invitations
from app.services.selection import Filters

router = APIRouter(prefix="/v1", tags=["coverage"], route_class=StrictRoute)


@router.get(
    "/accounts/{account_id}/coverage",
    response_model=AccountCoverageReport,
    operation_id="get_account_coverage",
    tags=["accounts"],
)
async def get_account_coverage(
    account_id: AccountId,
    session: ReadSessionDep,
    auth: ReadAuth,
    requested: WindowDep,
) -> AccountCoverageReport:
    """Who at the account answered in the window, by role, job level and department."""
    await accounts.get_account(session, auth.workspace_id, account_id)
    window = requested.resolve()
    found = await account_coverage(session, auth.workspace_id, account_id, window=window)
    invited = await last_invitations(
        session, auth.workspace_id, account_id, before=window.end, now=utcnow()
    )
    return account_coverage_read(account_id, window, found, invited)


@router.get(
    "/coverage",
    response_model=CoverageReport,
    operation_id="get_coverage",
    dependencies=[REVALIDATE],
    responses=TAGGED_DOCS,
)
async def get_coverage(
    session: ReadSessionDep,
    auth: ReadAuth,
    requested: WindowDep,
    segment: Text = None,
    industry: Text = None,
) -> CoverageReport:
    """The share of accounts and of annual revenue with an answer (and a decision maker's)."""
    window = requested.resolve()
    found = await portfolio_coverage(
        session, auth.workspace_id, window=window, segment=segment, industry=industry
    )
    return coverage_read(window, Filters(segment=segment, industry=industry).echo(), found)
