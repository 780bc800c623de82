"""At-risk accounts: each with the reasons it is flagged and the evidence behind each reason."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.base import Money
from app.schemas.cases import OpenCases
from app.schemas.movements import MovementRead
from app.schemas.scores import BenchmarkStanding, ChangeRead, ScoreRead


class Reason(StrEnum):
    LOW_NPS = "low_nps"
    DECISION_MAKER_DETRACTOR = "decision_maker_detractor"
    SIGNIFICANT_DECLINE = "significant_decline"
    KEY_STAKEHOLDER_DOWNGRADE = "key_stakeholder_downgrade"
    SILENT = "silent"
    NO_DECISION_MAKER_ANSWER = "no_decision_maker_answer"
    BLIND_SPOT = "blind_spot"


class LowNps(BaseModel):
    code: Literal[Reason.LOW_NPS] = Reason.LOW_NPS
    detail: str
    nps: float
    threshold: float = Field(description="settings.at_risk.nps_below")
    n: int


class DetractorAnswer(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    stakeholder_id: str
    response_id: uuid.UUID
    score: int
    submitted_at: datetime


class DecisionMakerDetractor(BaseModel):
    code: Literal[Reason.DECISION_MAKER_DETRACTOR] = Reason.DECISION_MAKER_DETRACTOR
    detail: str
    answers: list[DetractorAnswer] = Field(description="each decision maker's latest answer")


class SignificantDecline(BaseModel):
    code: Literal[Reason.SIGNIFICANT_DECLINE] = Reason.SIGNIFICANT_DECLINE
    detail: str
    previous_from: datetime
    previous_to: datetime
    previous_nps: float | None
    change: ChangeRead


class KeyStakeholderDowngrade(BaseModel):
    code: Literal[Reason.KEY_STAKEHOLDER_DOWNGRADE] = Reason.KEY_STAKEHOLDER_DOWNGRADE
    detail: str
    movements: list[MovementRead] = Field(description="decision makers' and influencers' falls")


class Silent(BaseModel):
    code: Literal[Reason.SILENT] = Reason.SILENT
    detail: str
    last_answered_at: datetime | None
    silent_days: int = Field(description="settings.at_risk.silent_days")


class NoDecisionMakerAnswer(BaseModel):
    code: Literal[Reason.NO_DECISION_MAKER_ANSWER] = Reason.NO_DECISION_MAKER_ANSWER
    detail: str
    registered_decision_makers: int


class BlindSpot(BaseModel):
    code: Literal[Reason.BLIND_SPOT] = Reason.BLIND_SPOT
    detail: str
    predicted_score: float = Field(
        description="the team's mean prediction made before the window's first answer"
    )
    mean_score: float = Field(description="the clients' mean score in the window")
    gap: float = Field(description="predicted_score - mean_score, in 0-10 points")
    authors: int


RiskReason = Annotated[
    LowNps
    | DecisionMakerDetractor
    | SignificantDecline
    | KeyStakeholderDowngrade
    | Silent
    | NoDecisionMakerAnswer
    | BlindSpot,
    Field(discriminator="code"),
]


class AtRiskAccount(BaseModel):
    account_id: str
    name: str | None
    segment: str | None
    industry: str | None
    annual_revenue: Money | None = Field(description="the revenue at risk")
    currency: str | None
    score: ScoreRead = Field(description="the account's score in the window")
    benchmark: BenchmarkStanding
    reasons: list[RiskReason]
    open_case: OpenCases = Field(
        description="evidence: the account's recovery cases not closed yet (someone is on it)"
    )


class AtRiskSummary(BaseModel):
    accounts: int = Field(description="accounts flagged, over all pages")
    revenue_at_risk: Money = Field(description="their annual revenue, over all pages")
    by_reason: dict[str, int]


class AtRiskPage(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    method: str
    from_: datetime = Field(alias="from")
    to: datetime
    summary: AtRiskSummary
    data: list[AtRiskAccount]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")
