"""Score objects and the reports that carry them."""

from datetime import datetime
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from app.industries import Position, RangeSource
from app.schemas.base import Money
from app.schemas.cases import OpenCases
from app.scoring import CIMethod, Precision

# Scores


class IntervalRead(BaseModel):
    low: float
    high: float
    level: float
    method: CIMethod


class UnweightedRead(BaseModel):
    nps: float | None
    ci: IntervalRead | None


class ScoreRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "nps": 30.0,
                    "n": 10,
                    "promoters": 5,
                    "passives": 3,
                    "detractors": 2,
                    "promoter_pct": 50.0,
                    "passive_pct": 30.0,
                    "detractor_pct": 20.0,
                    "ci": {"low": -19.05, "high": 65.2, "level": 0.95, "method": "adjusted_wald"},
                    "precision": "low",
                    "n_effective": 10.0,
                    "unweighted": None,
                }
            ]
        }
    )

    nps: float | None
    n: int
    promoters: int
    passives: int
    detractors: int
    promoter_pct: float | None
    passive_pct: float | None
    detractor_pct: float | None
    ci: IntervalRead | None
    precision: Precision
    n_effective: float
    unweighted: UnweightedRead | None = None


# Methods, benchmarks, trends, comparisons


class WeightsRead(BaseModel):
    """The weights that produced a score; null under unweighted methods."""

    role: dict[str, float] | None = None
    job_level: dict[str, float] | None = None
    account: Literal["equal", "revenue"] | None = Field(
        None, description="account_as_unit: each account counts equally, or by annual revenue"
    )
    accounts_without_revenue: list[str] | None = Field(
        None, description="weight=revenue: accounts left out of the weighted figures"
    )


class BenchmarkStanding(BaseModel):
    """Where a score stands against its industry's typical range."""

    industry: str | None
    low: float | None
    high: float | None
    position: Position


class RoleBenchmarkStanding(BenchmarkStanding):
    """Where a role group's score stands against its role's range: the role's range within the
    industry (`industry`: the account's, or the `industry` filter's), else the role's range
    across industries, else the industry's range; `source` says which (null: none applies, the
    position is unknown)."""

    role: str | None
    source: RangeSource | None = Field(
        description="industry_role, role or industry: the range used; null when none applies"
    )


class ChangeRead(BaseModel):
    """This score minus the other one: `difference` is the plain difference of the two displayed
    scores; `ci`, `z`, `p_value` and `significant` come from the two-sample adjusted-Wald test on
    the adjusted centres (rules and examples: docs/scoring.md in the repository)."""

    previous: datetime | None = Field(
        None, description="trend: the start of the point compared with"
    )
    difference: float = Field(
        description="the point estimate: this score's nps minus the other's, as displayed (the "
        "weighted nps under a weighted method), in NPS points"
    )
    adjusted_difference: float = Field(
        description="the difference of the adjusted-Wald centres, each 100 * (P - D) / (n + 3) "
        "(on Kish pseudo-counts when weighted): what z tests and `ci` is centred on. It pulls "
        "each score toward 0 by n / (n + 3), so on small samples it differs from `difference`, "
        "and `ci` may even leave `difference` out"
    )
    ci: IntervalRead = Field(
        description="the adjusted-Wald interval of the change, centred on `adjusted_difference`"
    )
    z: float = Field(description="the test statistic: adjusted_difference / its standard error")
    p_value: float = Field(description="two-sided normal p-value of z")
    significant: bool = Field(description="p_value < 1 - the interval's level")


class AccountProfile(BaseModel):
    """The account a group_by=account group is about, so a dashboard needs no call per row."""

    model_config = ConfigDict(from_attributes=True)

    name: str | None
    segment: str | None
    industry: str | None
    annual_revenue: Money | None
    currency: str | None


class GroupRead(BaseModel):
    key: dict[str, str | None]
    score: ScoreRead
    account: AccountProfile | None = Field(None, description="with group_by=account")
    benchmark: RoleBenchmarkStanding | BenchmarkStanding | None = Field(
        None,
        description="with group_by=industry, group_by=account (against the account's "
        "industry range) and group_by=role (against the role's range, `source` naming it)",
    )


class NpsReport(BaseModel):
    method: str
    weights: WeightsRead | None = None
    from_: datetime = Field(alias="from")
    to: datetime
    filters: dict[str, str]
    score: ScoreRead
    benchmark: BenchmarkStanding | None = Field(None, description="when filtered by industry")
    groups: list[GroupRead] | None = None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class AccountNpsReport(BaseModel):
    account_id: str
    method: str
    weights: WeightsRead | None = None
    from_: datetime = Field(alias="from")
    to: datetime
    score: ScoreRead
    benchmark: BenchmarkStanding = Field(description="against the account's industry range")
    breakdowns: dict[str, list[GroupRead]] = Field(
        description="the same score by role, job_level and department"
    )
    open_case: OpenCases = Field(
        description="the account's recovery cases not closed yet (now, whatever the window)"
    )

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
