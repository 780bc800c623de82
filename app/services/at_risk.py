"""Accounts at risk: every account checked against six rules, each finding with its evidence."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.industries import Range
from app.models import Account, Role, Stakeholder, SurveyResponse
from app.schemas.analytics import MovementRead
from app.schemas.at_risk import (
    AtRiskAccount,
    DecisionMakerDetractor,
    DetractorAnswer,
    KeyStakeholderDowngrade,
    LowNps,
    NoDecisionMakerAnswer,
    Reason,
    RiskReason,
    SignificantDecline,
    Silent,
)
from app.schemas.scores import ChangeRead, ScoreRead
from app.scoring import PASSIVE_MIN, Method
from app.services.cells import Cell
from app.services.coverage import decision_maker_answered, last_answered_by_account
from app.services.movements import Movement, downward_by_account
from app.services.nps import Dimension, Filters, Selection, Weighting, Window, count
from app.services.reports import ScoreOptions, benchmark_standing, change_read, score_read

KEY_ROLES = (Role.DECISION_MAKER, Role.INFLUENCER)


@dataclass(frozen=True, slots=True)
class Rules:
    nps_below: float
    silent_days: int


@dataclass(frozen=True, slots=True)
class Scoring:
    method: Method
    weighting: Weighting | None
    options: ScoreOptions
    benchmarks: dict[str, Range]


async def _decision_maker_detractors(
    session: AsyncSession, workspace_id: uuid.UUID, window: Window
) -> dict[str, list[DetractorAnswer]]:
    """Decision makers whose latest answer in the window is a detractor's, per account."""
    # Each person's latest answer in the window, read off the chain (app.services.chain).
    rows = await session.execute(
        select(
            SurveyResponse.account_id,
            SurveyResponse.stakeholder_id,
            SurveyResponse.id,
            SurveyResponse.score,
            SurveyResponse.submitted_at,
        )
        .where(
            SurveyResponse.workspace_id == workspace_id,
            ~SurveyResponse.excluded,
            SurveyResponse.submitted_at >= window.start,
            SurveyResponse.submitted_at < window.end,
            SurveyResponse.superseded_at >= window.end,
            SurveyResponse.role == Role.DECISION_MAKER.value,
            SurveyResponse.score < PASSIVE_MIN,
        )
        .order_by(SurveyResponse.account_id, SurveyResponse.stakeholder_id)
    )
    out: dict[str, list[DetractorAnswer]] = {}
    for account_id, stakeholder_id, response_id, score, submitted_at in rows:
        out.setdefault(account_id, []).append(
            DetractorAnswer(
                stakeholder_id=stakeholder_id,
                response_id=response_id,
                score=score,
                submitted_at=submitted_at,
            )
        )
    return out


async def _registered_decision_makers(
    session: AsyncSession, workspace_id: uuid.UUID
) -> dict[str, int]:
    rows = await session.execute(
        select(Stakeholder.account_id, func.count())
        .where(
            Stakeholder.workspace_id == workspace_id,
            Stakeholder.role == Role.DECISION_MAKER.value,
        )
        .group_by(Stakeholder.account_id)
    )
    return {row[0]: row[1] for row in rows}


def _day(moment: datetime) -> str:
    return moment.date().isoformat()


async def find_at_risk(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    window: Window,
    previous: Window,
    scoring: Scoring,
    rules: Rules,
    segment: str | None = None,
    industry: str | None = None,
) -> list["Flagged"]:
    """Flagged accounts, by annual revenue (largest first, unknown last), then id."""
    query = select(Account).where(Account.workspace_id == workspace_id)
    if segment is not None:
        query = query.where(Account.segment == segment)
    if industry is not None:
        query = query.where(Account.industry == industry)
    accounts = list(await session.scalars(query))
    if not accounts:
        return []
    selection = Selection(
        (window, previous),
        Filters(segment=segment, industry=industry),
        scoring.method,
        scoring.weighting,
    )
    cells = await count(session, workspace_id, selection, (Dimension.ACCOUNT,))
    detractors = await _decision_maker_detractors(session, workspace_id, window)
    falls = await downward_by_account(session, workspace_id, window=window, roles=KEY_ROLES)
    last_heard = await last_answered_by_account(session, workspace_id, before=window.end)
    heard_decision_maker = await decision_maker_answered(session, workspace_id, window=window)
    registered = await _registered_decision_makers(session, workspace_id)
    quiet_since = window.end - timedelta(days=rules.silent_days)
    options = scoring.options

    flagged = []
    for account in accounts:
        now, before = cells.get((0, account.id), Cell()), cells.get((1, account.id), Cell())
        score = score_read(now, options)
        # Each reason is decided here and built only if its account is on the requested page:
        # a portfolio can have thousands of movements as evidence.
        reasons: list[tuple[Reason, Callable[[], RiskReason]]] = []
        if score.nps is not None and score.nps < rules.nps_below and score.n >= options.min_n:
            reasons.append((Reason.LOW_NPS, partial(_low_nps, score, rules)))
        if answers := detractors.get(account.id):
            reasons.append((Reason.DECISION_MAKER_DETRACTOR, partial(_detractors, answers)))
        change = change_read(now, before, options)
        if change is not None and change.significant and change.difference < 0:
            decline = partial(_decline, change, previous, score_read(before, options).nps)
            reasons.append((Reason.SIGNIFICANT_DECLINE, decline))
        if moves := falls.get(account.id):
            reasons.append((Reason.KEY_STAKEHOLDER_DOWNGRADE, partial(_downgrades, moves)))
        last = last_heard.get(account.id)
        if last is None or last < quiet_since:
            reasons.append((Reason.SILENT, partial(_silent, last, rules.silent_days)))
        if account.id not in heard_decision_maker:
            count_registered = registered.get(account.id, 0)
            reasons.append((Reason.NO_DECISION_MAKER_ANSWER, partial(_unheard, count_registered)))
        if reasons:
            revenue = None if account.annual_revenue is None else float(account.annual_revenue)
            flagged.append(
                Flagged(
                    account_id=account.id,
                    revenue=revenue,
                    codes=[code for code, _ in reasons],
                    build=partial(_build, account, revenue, score, reasons, scoring.benchmarks),
                )
            )
    flagged.sort(key=lambda f: f.sort_key)
    return flagged


@dataclass(frozen=True, slots=True)
class Flagged:
    """An account with at least one reason; `build` makes its full answer with the evidence."""

    account_id: str
    revenue: float | None
    codes: list[Reason]
    build: Callable[[], AtRiskAccount]

    @property
    def sort_key(self) -> tuple[bool, float, str]:
        """Largest revenue first, unknown revenue last, then by id."""
        return (self.revenue is None, -(self.revenue or 0.0), self.account_id)


def _build(
    account: Account,
    revenue: float | None,
    score: ScoreRead,
    reasons: list[tuple[Reason, Callable[[], RiskReason]]],
    benchmarks: dict[str, Range],
) -> AtRiskAccount:
    return AtRiskAccount(
        account_id=account.id,
        name=account.name,
        segment=account.segment,
        industry=account.industry,
        annual_revenue=revenue,
        currency=account.currency,
        score=score,
        benchmark=benchmark_standing(account.industry, score.nps, benchmarks),
        reasons=[make() for _, make in reasons],
    )


def _low_nps(score: ScoreRead, rules: Rules) -> LowNps:
    assert score.nps is not None
    return LowNps(
        detail=f"NPS {score.nps:.1f} is below {rules.nps_below:g} (n = {score.n})",
        nps=score.nps,
        threshold=rules.nps_below,
        n=score.n,
    )


def _detractors(answers: list[DetractorAnswer]) -> DecisionMakerDetractor:
    return DecisionMakerDetractor(
        detail=f"{len(answers)} decision maker(s) gave a detractor score", answers=answers
    )


def _decline(
    change: ChangeRead, previous: Window, previous_nps: float | None
) -> SignificantDecline:
    return SignificantDecline(
        detail=f"NPS fell {-change.difference:.1f} points against the previous period "
        f"(p = {change.p_value:.3f})",
        previous_from=previous.start,
        previous_to=previous.end,
        previous_nps=previous_nps,
        change=change,
    )


def _downgrades(moves: list[Movement]) -> KeyStakeholderDowngrade:
    return KeyStakeholderDowngrade(
        detail=f"{len(moves)} fall(s) by decision makers or influencers",
        movements=[MovementRead.of(m) for m in moves],
    )


def _silent(last: datetime | None, days: int) -> Silent:
    since = "never answered" if last is None else f"last answer on {_day(last)}"
    return Silent(
        detail=f"no answer in {days} days ({since})", last_answered_at=last, silent_days=days
    )


def _unheard(registered: int) -> NoDecisionMakerAnswer:
    return NoDecisionMakerAnswer(
        detail=f"no decision-maker answer in the window ({registered} registered)",
        registered_decision_makers=registered,
    )
