"""Key drivers: per model its fit and what it left out, per attribute its share of R²."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.scores import RoleBenchmarkStanding, ScoreRead

Quadrant = Literal["fix_first", "keep", "monitor", "surplus"]
DriverPrecision = Literal["insufficient", "low", "ok"]


class ImportanceInterval(BaseModel):
    low: float
    high: float
    level: float
    method: Literal["account_bootstrap_percentile"] = "account_bootstrap_percentile"


class DriverRead(BaseModel):
    attribute: str
    importance: float | None = Field(
        description="share of the explained variance, percent; the model's attributes sum to 100"
    )
    raw_weight: float | None = Field(description="its part of R² (the raw weights sum to r2)")
    ci: ImportanceInterval | None = Field(
        description="percentile interval of `importance`, accounts resampled; null when the "
        "model's precision is insufficient or fewer than two accounts are in it"
    )
    mean: float | None = Field(description="mean rating of the answers that rate it")
    n: int = Field(description="answers that rate it")
    correlation: float | None = Field(
        description="Pearson correlation with the score over the answers that rate it"
    )
    quadrant: Quadrant | None = Field(
        description="importance against the median importance, performance (mean, on the "
        "catalog's scale when known) against the median performance: fix_first = important "
        "and rated low, keep = important and rated high, monitor = less important and rated "
        "low, surplus = less important and rated high; at the median counts as high"
    )


class ExcludedAttribute(BaseModel):
    attribute: str
    reason: Literal["too_few_answers", "constant", "collinear"]
    detail: str


class DriverModel(BaseModel):
    r2: float | None = Field(description="R² of the score on the attributes kept")
    n: int = Field(description="answers in the model: those that rate every attribute kept")
    accounts: int = Field(description="accounts those answers come from (the bootstrap's units)")
    rows: int = Field(description="answers counted in the slice, before listwise deletion")
    rows_dropped: int = Field(
        description="answers left out because they miss a rating of a kept attribute"
    )
    precision: DriverPrecision
    min_n: int = Field(description="n below which the precision is insufficient: 10·(p+1)")
    note: str | None = Field(None, description="why there are no importances, when there are none")
    excluded: list[ExcludedAttribute]
    drivers: list[DriverRead] = Field(description="by importance, largest first")


class DriverGroup(BaseModel):
    key: dict[str, str | None]
    model: DriverModel
    score: ScoreRead | None = Field(
        None, description="the group's score, counted as /v1/nps counts it with the same group_by"
    )
    benchmark: RoleBenchmarkStanding | None = Field(
        None, description="with group_by=role: where the role's score stands against its range"
    )


class DriversReport(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={
            "examples": [
                {
                    "method": "latest_per_stakeholder",
                    "driver_method": "relative_weights",
                    "from": "2025-12-01T00:00:00Z",
                    "to": "2026-12-01T00:00:00Z",
                    "filters": {},
                    "outcome": "score",
                    "attribute_source": "responses",
                    "resamples": 1000,
                    "seed": 0,
                    "confidence": 0.95,
                    "model": {
                        "r2": 0.41,
                        "n": 180,
                        "accounts": 24,
                        "rows": 192,
                        "rows_dropped": 12,
                        "precision": "ok",
                        "min_n": 30,
                        "note": None,
                        "excluded": [
                            {
                                "attribute": "billing",
                                "reason": "too_few_answers",
                                "detail": "4 answers rate it, fewer than 10",
                            }
                        ],
                        "drivers": [
                            {
                                "attribute": "support",
                                "importance": 62.5,
                                "raw_weight": 0.25625,
                                "ci": {
                                    "low": 44.1,
                                    "high": 78.9,
                                    "level": 0.95,
                                    "method": "account_bootstrap_percentile",
                                },
                                "mean": 3.4,
                                "n": 186,
                                "correlation": 0.58,
                                "quadrant": "fix_first",
                            },
                            {
                                "attribute": "product",
                                "importance": 37.5,
                                "raw_weight": 0.15375,
                                "ci": {
                                    "low": 21.1,
                                    "high": 55.9,
                                    "level": 0.95,
                                    "method": "account_bootstrap_percentile",
                                },
                                "mean": 4.1,
                                "n": 190,
                                "correlation": 0.47,
                                "quadrant": "surplus",
                            },
                        ],
                    },
                    "groups": None,
                }
            ]
        },
    )

    method: str = Field(description="how responses are counted (as in /v1/nps)")
    driver_method: Literal["relative_weights", "shapley"]
    from_: datetime = Field(alias="from")
    to: datetime
    filters: dict[str, str]
    outcome: Literal["score"] = "score"
    attribute_source: Literal["catalog", "responses"] = Field(
        description="catalog: the survey definition's rating attributes; responses: the numeric "
        "attribute keys found on the answers"
    )
    resamples: int
    seed: int
    confidence: float
    model: DriverModel
    groups: list[DriverGroup] | None = None
