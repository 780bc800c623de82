"""What the at-risk rules find in an account: the rules' parameters, one finding per reason
with its evidence, and the account assessed (app.services.at_risk finds them, for the list and
for the worker's account.risk_changed; app.presenters.at_risk shows them).
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from app.models import Account
from app.schemas.at_risk import Reason
from app.schemas.settings import AtRiskRules
from app.scoring import Change
from app.services.cells import Cell
from app.services.movements import Movement
from app.services.selection import Window


@dataclass(frozen=True, slots=True)
class Rules:
    nps_below: float
    silent_days: int

    @classmethod
    def of(cls, settings: AtRiskRules) -> "Rules":
        """The rules a workspace's settings set (their `at_risk` section)."""
        return cls(settings.nps_below, settings.silent_days)


# Findings: one per reason, with its evidence.


@dataclass(frozen=True, slots=True)
class LowNps:
    nps: float
    threshold: float
    n: int
    code = Reason.LOW_NPS


@dataclass(frozen=True, slots=True)
class DetractorAnswer:
    stakeholder_id: str
    response_id: uuid.UUID
    score: int
    submitted_at: datetime


@dataclass(frozen=True, slots=True)
class DecisionMakerDetractor:
    answers: list[DetractorAnswer]
    code = Reason.DECISION_MAKER_DETRACTOR


@dataclass(frozen=True, slots=True)
class SignificantDecline:
    previous: Window
    previous_nps: float | None
    change: Change
    code = Reason.SIGNIFICANT_DECLINE


@dataclass(frozen=True, slots=True)
class KeyStakeholderDowngrade:
    movements: list[Movement]
    code = Reason.KEY_STAKEHOLDER_DOWNGRADE


@dataclass(frozen=True, slots=True)
class Silent:
    last_answered_at: datetime | None
    silent_days: int
    code = Reason.SILENT


@dataclass(frozen=True, slots=True)
class NoDecisionMakerAnswer:
    registered_decision_makers: int
    code = Reason.NO_DECISION_MAKER_ANSWER


@dataclass(frozen=True, slots=True)
class BlindSpot:
    """The team favourable (perception gap: app.services.perception) where clients are not."""

    predicted_score: float
    mean_score: float
    authors: int
    code = Reason.BLIND_SPOT


Finding = (
    LowNps
    | DecisionMakerDetractor
    | SignificantDecline
    | KeyStakeholderDowngrade
    | Silent
    | NoDecisionMakerAnswer
    | BlindSpot
)


@dataclass(frozen=True, slots=True)
class Flagged:
    """An account with its findings (at risk when there is at least one), its score in the
    window, its open recovery cases."""

    account: Account
    cell: Cell
    findings: list[Finding]
    open_cases: list[uuid.UUID] = field(default_factory=list)

    @property
    def revenue(self) -> float | None:
        revenue = self.account.annual_revenue
        return None if revenue is None else float(revenue)

    @property
    def codes(self) -> list[Reason]:
        return [f.code for f in self.findings]

    @property
    def sort_key(self) -> tuple[bool, float, str]:
        """Largest revenue first, unknown revenue last, then by id."""
        return (self.revenue is None, -(self.revenue or 0.0), self.account.id)
