"""Coverage: who at an account was heard from, and which share of the portfolio answered."""

from decimal import Decimal

from fastapi import APIRouter

from app.api.accounts import AccountId
from app.api.deps import ReadAuth
from app.api.score_params import From, Text, To, make_window
from app.api.settings import WorkspaceSettingsDep
from app.db import ReadSessionDep
from app.schemas.analytics import (
    AccountCoverageReport,
    AccountShare,
    CoverageReport,
    DepartmentCoverage,
    JobLevelCoverage,
    RevenueShare,
    RoleCoverage,
    SilentRole,
    StakeholderActivity,
    StakeholderCount,
)
from app.services import accounts
from app.services.coverage import Group, account_coverage, portfolio_coverage

router = APIRouter(prefix="/v1", tags=["coverage"])


def _counts(group: Group) -> dict[str, object]:
    return {
        "registered": group.registered,
        "answered": group.answered,
        "responses": group.responses,
        "last_answered_at": group.last_answered_at,
    }


def _pct(part: int | Decimal, total: int | Decimal) -> float | None:
    return float(100 * part / total) if total else None


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
    settings: WorkspaceSettingsDep,
    from_: From = None,
    to: To = None,
) -> AccountCoverageReport:
    """Who at the account answered in the window, by role, job level and department."""
    await accounts.get_account(session, auth.workspace_id, account_id)
    window = make_window(from_, to, settings.default_window_days)
    found = await account_coverage(session, auth.workspace_id, account_id, window=window)
    return AccountCoverageReport(
        account_id=account_id,
        from_=window.start,
        to=window.end,
        stakeholders=StakeholderCount(
            registered=found.stakeholders.registered, answered=found.stakeholders.answered
        ),
        by_role=[
            RoleCoverage.model_validate({"role": r, **_counts(g)}) for r, g in found.by_role.items()
        ],
        by_job_level=[
            JobLevelCoverage.model_validate({"job_level": j, **_counts(g)})
            for j, g in found.by_job_level.items()
        ],
        by_department=[
            DepartmentCoverage.model_validate({"department": d, **_counts(g)})
            for d, g in found.by_department.items()
        ],
        silent_roles=[
            SilentRole(role=r, registered=g.registered, last_answered_at=g.last_answered_at)
            for r, g in found.silent_roles().items()
        ],
        stakeholder_activity=[
            StakeholderActivity(
                stakeholder_id=a.stakeholder_id,
                name=a.name,
                role=a.role,
                job_level=a.job_level,
                department=a.department,
                last_answered_at=a.last_answered_at,
                answered_in_window=a.answered_in_window,
            )
            for a in found.activity
        ],
    )


@router.get("/coverage", response_model=CoverageReport, operation_id="get_coverage")
async def get_coverage(
    session: ReadSessionDep,
    auth: ReadAuth,
    settings: WorkspaceSettingsDep,
    from_: From = None,
    to: To = None,
    segment: Text = None,
    industry: Text = None,
) -> CoverageReport:
    """The share of accounts and of annual revenue with an answer (and a decision maker's)."""
    window = make_window(from_, to, settings.default_window_days)
    found = await portfolio_coverage(
        session, auth.workspace_id, window=window, segment=segment, industry=industry
    )
    counted, revenue = found.accounts, found.revenue
    filters = {"segment": segment, "industry": industry}
    return CoverageReport(
        from_=window.start,
        to=window.end,
        filters={name: value for name, value in filters.items() if value is not None},
        accounts=AccountShare(
            total=counted.total,
            answered=counted.answered,
            answered_pct=_pct(counted.answered, counted.total),
            decision_maker_answered=counted.decision_maker_answered,
            decision_maker_answered_pct=_pct(counted.decision_maker_answered, counted.total),
        ),
        revenue=RevenueShare(
            total=float(revenue.total),
            answered=float(revenue.answered),
            answered_pct=_pct(revenue.answered, revenue.total),
            decision_maker_answered=float(revenue.decision_maker_answered),
            decision_maker_answered_pct=_pct(revenue.decision_maker_answered, revenue.total),
            accounts_without_revenue=found.accounts_without_revenue,
            currencies=found.currencies,
        ),
    )
