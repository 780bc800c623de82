"""Coverage schemas from app.services.coverage's values."""

from collections.abc import Mapping
from dataclasses import asdict
from decimal import Decimal

from app.models import Invitation, InvitationStatus
from app.schemas.coverage import (
    AccountCoverageReport,
    AccountShare,
    CoverageReport,
    DepartmentCoverage,
    JobLevelCoverage,
    LastInvitationRead,
    RevenueShare,
    RoleCoverage,
    SilentRole,
    StakeholderActivity,
    StakeholderCount,
)
from app.services.coverage import AccountCoverage, PortfolioCoverage
from app.services.selection import Window


def _pct(part: int | Decimal, total: int | Decimal) -> float | None:
    return float(100 * part / total) if total else None


def account_coverage_read(
    account_id: str,
    window: Window,
    found: AccountCoverage,
    invited: Mapping[str, tuple[Invitation, InvitationStatus]],
) -> AccountCoverageReport:
    """`invited`: each stakeholder's last invitation and its status now, by stakeholder id
    (absent: never invited)."""

    def last(stakeholder_id: str) -> LastInvitationRead | None:
        if stakeholder_id not in invited:
            return None
        invitation, status = invited[stakeholder_id]
        # The stored status, replaced by the one it reads as now (expiry applied).
        return LastInvitationRead.model_validate(invitation).model_copy(update={"status": status})

    return AccountCoverageReport(
        account_id=account_id,
        from_=window.start,
        to=window.end,
        stakeholders=StakeholderCount.model_validate(found.stakeholders),
        by_role=[RoleCoverage(role=r, **asdict(g)) for r, g in found.by_role.items()],
        by_job_level=[
            JobLevelCoverage(job_level=j, **asdict(g)) for j, g in found.by_job_level.items()
        ],
        by_department=[
            DepartmentCoverage(department=d, **asdict(g)) for d, g in found.by_department.items()
        ],
        silent_roles=[
            SilentRole(role=r, registered=g.registered, last_answered_at=g.last_answered_at)
            for r, g in found.silent_roles().items()
        ],
        stakeholder_activity=[
            StakeholderActivity(**asdict(a), last_invitation=last(a.stakeholder_id))
            for a in found.activity
        ],
    )


def coverage_read(
    window: Window, filters: dict[str, str], found: PortfolioCoverage
) -> CoverageReport:
    counted, revenue = found.accounts, found.revenue
    return CoverageReport(
        from_=window.start,
        to=window.end,
        filters=filters,
        accounts=AccountShare(
            total=counted.total,
            answered=counted.answered,
            answered_pct=_pct(counted.answered, counted.total),
            decision_maker_answered=counted.decision_maker_answered,
            decision_maker_answered_pct=_pct(counted.decision_maker_answered, counted.total),
        ),
        revenue=RevenueShare(
            total=revenue.total,
            answered=revenue.answered,
            answered_pct=_pct(revenue.answered, revenue.total),
            decision_maker_answered=revenue.decision_maker_answered,
            decision_maker_answered_pct=_pct(revenue.decision_maker_answered, revenue.total),
            accounts_without_revenue=found.accounts_without_revenue,
            currencies=found.currencies,
        ),
    )
