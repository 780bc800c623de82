"""The staff perception gap: the account team's predictions, and how they compare with what the
clients answered (issue 15, section 4)."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.models import Role
from app.schemas.base import Strict
from app.schemas.responses import Score
from app.schemas.scores import ScoreRead
from app.scoring import Category
from app.scoring.perception import Quadrant

Note = Annotated[str, StringConstraints(max_length=2000)]


class PredictionWrite(Strict):
    """How likely the author thinks this client is to recommend us (0-10, an integer)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "predicted_score": 8,
                    "role_predictions": {"decision_maker": 9, "user": 6},
                    "note": "renewal call went well; users still fight the importer",
                }
            ]
        }
    )

    predicted_score: Score
    role_predictions: dict[Role, Score] = Field(
        default_factory=dict, description="the author's prediction for a role, where it differs"
    )
    note: Note | None = None


class PredictionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    account_id: str
    author: str
    version: int = Field(description="1 for the author's first prediction for the account")
    predicted_score: int
    role_predictions: dict[str, int]
    note: str | None
    predicted_at: datetime = Field(
        description="the server's clock when it was stored: only predictions made before the "
        "answers they are compared with count"
    )


class PredictionHistory(BaseModel):
    account_id: str
    author: str
    data: list[PredictionRead] = Field(description="every version, oldest first")


class TeamView(BaseModel):
    predicted_score: float = Field(
        description="the mean of the authors' predictions counted (each author's latest before "
        "the cutoff; with a `role` filter, their prediction for that role where they made one)"
    )
    predicted_category: Category = Field(
        description="the mean classified with the score thresholds (8.5 is passive)"
    )
    authors: int
    predictions: list[PredictionRead] = Field(description="the versions counted, by author")


class ClientView(BaseModel):
    score: ScoreRead = Field(description="the account's score in the window, under `method`")
    mean_score: float | None = Field(
        description="the mean 0-10 score of the answers that score counts (weighted under "
        "role_weighted): what a predicted score is compared with"
    )
    first_answer_at: datetime | None = Field(
        description="the earliest answer counted: the cutoff for predictions"
    )


class AccountGap(BaseModel):
    account_id: str
    name: str | None
    team: TeamView | None = Field(description="null: no prediction made before the cutoff")
    clients: ClientView
    gap: float | None = Field(
        description="team.predicted_score - clients.mean_score, in 0-10 points (positive: the "
        "team is more optimistic than its clients)"
    )
    quadrant: Quadrant | None = Field(
        description="each side favourable when its mean is at least 7 (not a detractor's "
        "level): agreed_strength, agreed_weakness, blind_spot (the team favourable, the "
        "clients not), undervalued (the reverse); null with `reason`"
    )
    reason: Literal["no_answers", "no_prediction_before_answers"] | None = Field(
        None, description="why there is no gap"
    )


class CalibrationRead(BaseModel):
    n: int = Field(description="accounts compared")
    mae: float | None = Field(description="mean absolute error, in 0-10 points")
    bias: float | None = Field(description="mean signed error (positive: optimistic)")


class CalibrationPoint(CalibrationRead):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: datetime = Field(alias="from")
    to: datetime


class AuthorCalibration(BaseModel):
    author: str
    overall: CalibrationRead = Field(description="over the whole window")
    series: list[CalibrationPoint] = Field(
        description="per `interval` bucket, each compared as its own window (its own answers "
        "and its own cutoff)"
    )


class PerceptionGapReport(BaseModel):
    model_config = ConfigDict(
        populate_by_name=True,
        serialize_by_alias=True,
        json_schema_extra={
            "examples": [
                {
                    "method": "latest_per_stakeholder",
                    "from": "2026-01-01T00:00:00Z",
                    "to": "2026-07-01T00:00:00Z",
                    "filters": {},
                    "interval": "quarter",
                    "rule": "each author's latest prediction made before the account's first "
                    "counted answer in the window",
                    "accounts": [
                        {
                            "account_id": "acme",
                            "name": "Acme",
                            "team": {
                                "predicted_score": 8.5,
                                "predicted_category": "passive",
                                "authors": 2,
                                "predictions": [],
                            },
                            "clients": {
                                "score": {
                                    "nps": -50.0,
                                    "n": 2,
                                    "promoters": 0,
                                    "passives": 1,
                                    "detractors": 1,
                                    "promoter_pct": 0.0,
                                    "passive_pct": 50.0,
                                    "detractor_pct": 50.0,
                                    "ci": {
                                        "low": -100.0,
                                        "high": 30.98,
                                        "level": 0.95,
                                        "method": "adjusted_wald",
                                    },
                                    "precision": "insufficient",
                                    "n_effective": 2.0,
                                    "unweighted": None,
                                },
                                "mean_score": 5.5,
                                "first_answer_at": "2026-02-03T10:00:00Z",
                            },
                            "gap": 3.0,
                            "quadrant": "blind_spot",
                            "reason": None,
                        }
                    ],
                    "authors": [
                        {
                            "author": "kim@vendor.example",
                            "overall": {"n": 1, "mae": 3.0, "bias": 3.0},
                            "series": [],
                        }
                    ],
                }
            ]
        },
    )

    method: str
    from_: datetime = Field(alias="from")
    to: datetime
    filters: dict[str, str]
    interval: str
    rule: str = Field(description="which predictions are compared (no hindsight)")
    accounts: list[AccountGap] = Field(description="accounts with a prediction, by id")
    authors: list[AuthorCalibration] = Field(description="by author")
