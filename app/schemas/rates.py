"""Response rates: what became of the invitations sent in a window, overall and by group."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.schemas.scores import AccountProfile
from app.scoring import Precision


class RateIntervalRead(BaseModel):
    low: float = Field(description="0 to 1, like `rate`")
    high: float
    level: float
    method: Literal["wilson"] = Field(description="Wilson's score interval (docs/scoring.md)")


class ResponseRateRead(BaseModel):
    invited: int = Field(
        description="invitations sent in the window (suppressed ones were not sent); "
        "answered + dismissed + expired + revoked + pending = invited"
    )
    suppressed: int = Field(description="invitations a fatigue rule suppressed, not sent")
    opened: int = Field(
        description="sent invitations that were opened, including every answered or dismissed "
        "one (answering implies opening), whatever their status now"
    )
    answered: int
    dismissed: int = Field(
        description="dismissed and not answered since (a dismissed invitation may still be "
        "answered, and then counts as answered)"
    )
    expired: int = Field(description="left unanswered past expires_at")
    revoked: int
    pending: int = Field(description="issued or opened and not expired: may still be answered")
    rate: float | None = Field(
        description="answered / invited, from 0 to 1 (not a percentage); null when invited is 0"
    )
    ci: RateIntervalRead | None = Field(description="the rate's interval; null when invited is 0")
    precision: Precision = Field(
        description="on n = invited, with the workspace's min_n and low_n, as a score's is"
    )


class RateGroupRead(BaseModel):
    key: dict[str, str] = Field(
        description="the group's value: account_id, role, job_level, survey or channel"
    )
    response_rate: ResponseRateRead
    account: AccountProfile | None = Field(None, description="with group_by=account")


def _rate(
    invited: int,
    answered: int,
    opened: int,
    *,
    dismissed: int = 0,
    expired: int = 0,
    revoked: int = 0,
    low: float,
    high: float,
    precision: str,
) -> JsonValue:
    return {
        "invited": invited,
        "suppressed": 0,
        "opened": opened,
        "answered": answered,
        "dismissed": dismissed,
        "expired": expired,
        "revoked": revoked,
        "pending": invited - answered - dismissed - expired - revoked,
        "rate": answered / invited,
        "ci": {"low": low, "high": high, "level": 0.95, "method": "wilson"},
        "precision": precision,
    }


RESPONSE_RATE_REPORT_EXAMPLE: JsonValue = {
    "from": "2026-01-01T00:00:00Z",
    "to": "2026-04-01T00:00:00Z",
    "filters": {"survey": "relationship-2026"},
    "response_rate": _rate(
        40, 10, 24, dismissed=4, expired=6, revoked=0, low=0.1419, high=0.4019, precision="ok"
    ),
    "groups": [
        {
            "key": {"role": "decision_maker"},
            "response_rate": _rate(10, 1, 4, expired=4, low=0.0179, high=0.4042, precision="low"),
            "account": None,
        },
        {
            "key": {"role": "user"},
            "response_rate": _rate(
                30, 9, 20, dismissed=4, expired=2, low=0.1666, high=0.4788, precision="ok"
            ),
            "account": None,
        },
    ],
}


class ResponseRateReport(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={"examples": [RESPONSE_RATE_REPORT_EXAMPLE]},
    )

    from_: datetime = Field(alias="from")
    to: datetime
    filters: dict[str, str]
    response_rate: ResponseRateRead = Field(description="every invitation the filters select")
    groups: list[RateGroupRead] | None = Field(
        None, description="with group_by: one per value that has invitations, in key order"
    )
