"""Coverage: who at an account was heard from, and which share of the portfolio answered."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.models import InvitationChannel, InvitationStatus, JobLevel, Role
from app.schemas.base import Money

# Coverage of one account


class CoverageCounts(BaseModel):
    registered: int = Field(description="stakeholders registered now, by their current profile")
    answered: int = Field(description="of those, how many answered here in the window")
    responses: int = Field(description="answers here in the window, by the profile at the time")
    last_answered_at: datetime | None = Field(description="latest answer here before `to`")


class RoleCoverage(CoverageCounts):
    role: Role


class JobLevelCoverage(CoverageCounts):
    job_level: JobLevel


class DepartmentCoverage(CoverageCounts):
    department: str | None = Field(description="trimmed and lower-cased")


class StakeholderCount(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    registered: int
    answered: int


class SilentRole(BaseModel):
    role: Role
    registered: int
    last_answered_at: datetime | None


class LastInvitationRead(BaseModel):
    """A stakeholder's latest invitation created before `to` (suppressed ones were not sent)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    survey: str
    channel: InvitationChannel
    status: InvitationStatus = Field(
        description="its status now, as GET /v1/invitations/{id} shows it (an open one past "
        "expires_at is expired)"
    )
    created_at: datetime
    expires_at: datetime | None
    opened_at: datetime | None
    answered_at: datetime | None
    dismissed_at: datetime | None
    revoked_at: datetime | None


class StakeholderActivity(BaseModel):
    stakeholder_id: str
    name: str | None
    role: Role
    job_level: JobLevel
    department: str | None
    last_answered_at: datetime | None
    answered_in_window: bool
    last_invitation: LastInvitationRead | None = Field(
        description="the latest invitation sent to them before `to`; null: none"
    )


def _group(
    name: str, key: str, registered: int, answered: int, responses: int, last: str | None
) -> JsonValue:
    return {
        name: key,
        "registered": registered,
        "answered": answered,
        "responses": responses,
        "last_answered_at": last,
    }


ACCOUNT_COVERAGE_REPORT_EXAMPLE: JsonValue = {
    "account_id": "acme",
    "from": "2025-11-23T00:00:00Z",
    "to": "2026-11-23T00:00:00Z",
    "stakeholders": {"registered": 2, "answered": 1},
    "by_role": [
        _group("role", "decision_maker", 1, 0, 0, "2025-02-10T09:00:00Z"),
        _group("role", "influencer", 0, 0, 0, None),
        _group("role", "user", 1, 1, 2, "2026-10-01T12:00:00Z"),
        _group("role", "other", 0, 0, 0, None),
    ],
    "by_job_level": [
        _group("job_level", "executive", 1, 0, 0, "2025-02-10T09:00:00Z"),
        _group("job_level", "director", 0, 0, 0, None),
        _group("job_level", "manager", 0, 0, 0, None),
        _group("job_level", "individual_contributor", 1, 1, 2, "2026-10-01T12:00:00Z"),
        _group("job_level", "other", 0, 0, 0, None),
    ],
    "by_department": [
        _group("department", "engineering", 2, 1, 2, "2026-10-01T12:00:00Z"),
    ],
    "silent_roles": [
        {
            "role": "decision_maker",
            "registered": 1,
            "last_answered_at": "2025-02-10T09:00:00Z",
        },
        {"role": "influencer", "registered": 0, "last_answered_at": None},
        {"role": "other", "registered": 0, "last_answered_at": None},
    ],
    "stakeholder_activity": [
        {
            "stakeholder_id": "lee@acme.example",
            "name": "Lee",
            "role": "user",
            "job_level": "individual_contributor",
            "department": "Engineering",
            "last_answered_at": "2026-10-01T12:00:00Z",
            "answered_in_window": True,
            "last_invitation": {
                "id": "0b5e5f4e-8a39-4d6b-9c43-2f1f5a7e9d21",
                "survey": "relationship-2026",
                "channel": "email",
                "status": "answered",
                "created_at": "2026-09-28T08:00:00Z",
                "expires_at": "2026-10-28T08:00:00Z",
                "opened_at": "2026-10-01T11:58:00Z",
                "answered_at": "2026-10-01T12:00:00Z",
                "dismissed_at": None,
                "revoked_at": None,
            },
        },
        {
            "stakeholder_id": "dana@acme.example",
            "name": "Dana",
            "role": "decision_maker",
            "job_level": "executive",
            "department": "Engineering",
            "last_answered_at": "2025-02-10T09:00:00Z",
            "answered_in_window": False,
            "last_invitation": None,
        },
    ],
}


class AccountCoverageReport(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={"examples": [ACCOUNT_COVERAGE_REPORT_EXAMPLE]},
    )

    account_id: str
    from_: datetime = Field(alias="from")
    to: datetime
    stakeholders: StakeholderCount
    by_role: list[RoleCoverage] = Field(description="every role, decision makers first")
    by_job_level: list[JobLevelCoverage] = Field(description="every job level")
    by_department: list[DepartmentCoverage] = Field(description="by department, null last")
    silent_roles: list[SilentRole] = Field(description="roles with no answer here in the window")
    stakeholder_activity: list[StakeholderActivity] = Field(
        description="registered stakeholders, most recently heard first, never heard last"
    )


# Coverage of the portfolio


class AccountShare(BaseModel):
    total: int
    answered: int = Field(description="accounts with an answer in the window")
    answered_pct: float | None
    decision_maker_answered: int = Field(description="accounts with a decision maker's answer")
    decision_maker_answered_pct: float | None


class RevenueShare(BaseModel):
    total: Money = Field(description="sum of annual_revenue over accounts that have one")
    answered: Money
    answered_pct: float | None
    decision_maker_answered: Money
    decision_maker_answered_pct: float | None
    accounts_without_revenue: int
    currencies: list[str] = Field(description="the currencies of the summed revenue, sorted")


COVERAGE_REPORT_EXAMPLE: JsonValue = {
    "from": "2025-11-23T00:00:00Z",
    "to": "2026-11-23T00:00:00Z",
    "filters": {"segment": "enterprise"},
    "accounts": {
        "total": 4,
        "answered": 3,
        "answered_pct": 75.0,
        "decision_maker_answered": 1,
        "decision_maker_answered_pct": 25.0,
    },
    "revenue": {
        "total": "5000000.00",
        "answered": "4000000.00",
        "answered_pct": 80.0,
        "decision_maker_answered": "1200000.00",
        "decision_maker_answered_pct": 24.0,
        "accounts_without_revenue": 1,
        "currencies": ["EUR"],
    },
}


class CoverageReport(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={"examples": [COVERAGE_REPORT_EXAMPLE]},
    )

    from_: datetime = Field(alias="from")
    to: datetime
    filters: dict[str, str]
    accounts: AccountShare
    revenue: RevenueShare
