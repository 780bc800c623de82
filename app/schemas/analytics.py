"""Movements between categories and coverage of accounts, roles and revenue."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.models import JobLevel, Role
from app.scoring import Category, Direction
from app.services.movements import Answer, Movement, NetMove

# Movements

_BEFORE: JsonValue = {
    "response_id": "5f0c6a8e-2f1b-4d3c-9a57-0e1f2a3b4c5d",
    "score": 9,
    "category": "promoter",
    "submitted_at": "2026-03-02T10:00:00Z",
}
_AFTER: JsonValue = {
    "response_id": "8d7e6f5a-4b3c-4a1d-8e9f-0a1b2c3d4e5f",
    "score": 7,
    "category": "passive",
    "submitted_at": "2026-09-14T08:30:00Z",
}


class AnswerRead(BaseModel):
    response_id: uuid.UUID
    score: int
    category: Category
    submitted_at: datetime

    @classmethod
    def of(cls, answer: Answer) -> "AnswerRead":
        return cls(
            response_id=answer.response_id,
            score=answer.score,
            category=answer.category,
            submitted_at=answer.submitted_at,
        )


MOVEMENT_READ_EXAMPLE: JsonValue = {
    "stakeholder_id": "dana@acme.example",
    "account_id": "acme",
    "role": "decision_maker",
    "job_level": "executive",
    "direction": "down",
    "from": _BEFORE,
    "to": _AFTER,
}


class MovementRead(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={"examples": [MOVEMENT_READ_EXAMPLE]},
    )

    stakeholder_id: str
    account_id: str = Field(description="the account of the new answer")
    role: Role = Field(description="the role the stakeholder had at the new answer")
    job_level: JobLevel = Field(description="the job level at the new answer")
    direction: Direction
    from_: AnswerRead = Field(alias="from", description="the previous answer")
    to: AnswerRead = Field(description="the new answer, in another category")

    @classmethod
    def of(cls, m: Movement) -> "MovementRead":
        return cls(
            stakeholder_id=m.stakeholder_id,
            account_id=m.account_id,
            role=m.role,
            job_level=m.job_level,
            direction=m.direction,
            from_=AnswerRead.of(m.before),
            to=AnswerRead.of(m.after),
        )


class TransitionRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: Category = Field(alias="from")
    to: Category
    count: int


class NetMoverRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    stakeholder_id: str
    role: Role = Field(description="the role at the last movement's new answer")
    from_: AnswerRead = Field(alias="from", description="the first movement's previous answer")
    to: AnswerRead = Field(description="the last movement's new answer")

    @classmethod
    def of(cls, net: NetMove) -> "NetMoverRead":
        return cls(
            stakeholder_id=net.stakeholder_id,
            role=net.role,
            from_=AnswerRead.of(net.before),
            to=AnswerRead.of(net.after),
        )


ACCOUNT_MOVEMENTS_REPORT_EXAMPLE: JsonValue = {
    "account_id": "acme",
    "from": "2025-11-23T00:00:00Z",
    "to": "2026-11-23T00:00:00Z",
    "up": 1,
    "down": 1,
    "transitions": [
        {"from": "detractor", "to": "promoter", "count": 1},
        {"from": "promoter", "to": "passive", "count": 1},
    ],
    "climbers": [
        {
            "stakeholder_id": "lee@acme.example",
            "role": "user",
            "from": {
                "response_id": "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
                "score": 4,
                "category": "detractor",
                "submitted_at": "2026-01-12T14:00:00Z",
            },
            "to": {
                "response_id": "1c2d3e4f-5a6b-4c7d-9e8f-0a1b2c3d4e5f",
                "score": 10,
                "category": "promoter",
                "submitted_at": "2026-07-03T09:15:00Z",
            },
        }
    ],
    "fallers": [
        {
            "stakeholder_id": "dana@acme.example",
            "role": "decision_maker",
            "from": _BEFORE,
            "to": _AFTER,
        }
    ],
}


class AccountMovementsReport(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={"examples": [ACCOUNT_MOVEMENTS_REPORT_EXAMPLE]},
    )

    account_id: str
    from_: datetime = Field(alias="from")
    to: datetime
    up: int
    down: int
    transitions: list[TransitionRead] = Field(
        description="non-zero counts, by `from` then `to` (detractor, passive, promoter)"
    )
    climbers: list[NetMoverRead] = Field(description="stakeholders ending higher than they began")
    fallers: list[NetMoverRead] = Field(description="stakeholders ending lower than they began")


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
    registered: int
    answered: int


class SilentRole(BaseModel):
    role: Role
    registered: int
    last_answered_at: datetime | None


class StakeholderActivity(BaseModel):
    stakeholder_id: str
    name: str | None
    role: Role
    job_level: JobLevel
    department: str | None
    last_answered_at: datetime | None
    answered_in_window: bool


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
        },
        {
            "stakeholder_id": "dana@acme.example",
            "name": "Dana",
            "role": "decision_maker",
            "job_level": "executive",
            "department": "Engineering",
            "last_answered_at": "2025-02-10T09:00:00Z",
            "answered_in_window": False,
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
    total: float = Field(description="sum of annual_revenue over accounts that have one")
    answered: float
    answered_pct: float | None
    decision_maker_answered: float
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
        "total": 5000000.0,
        "answered": 4000000.0,
        "answered_pct": 80.0,
        "decision_maker_answered": 1200000.0,
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
