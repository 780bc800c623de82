"""Score objects and the reports that carry them."""

from datetime import datetime

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

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


class GroupRead(BaseModel):
    key: dict[str, str | None]
    score: ScoreRead


class NpsReport(BaseModel):
    method: str
    from_: datetime = Field(alias="from")
    to: datetime
    filters: dict[str, str]
    score: ScoreRead
    groups: list[GroupRead] | None = None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class AccountNpsReport(BaseModel):
    account_id: str
    method: str
    from_: datetime = Field(alias="from")
    to: datetime
    score: ScoreRead
    breakdowns: dict[str, list[GroupRead]] = Field(
        description="the same score by role, job_level and department"
    )

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
