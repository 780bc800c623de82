"""Accounts at risk: every account checked against six rules, each finding with its evidence.

Returns domain values (app.services.risk_findings; app.presenters.at_risk turns them into the
API's schemas): the flagged accounts of one page, largest revenue first, and a summary over
every page; or one account assessed, for the worker (app.services.risk_changes).
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Account, Role, Stakeholder, SurveyResponse
from app.pagination import decode_key, encode_key
from app.schemas.at_risk import Reason
from app.scoring import Category, Method
from app.scoring.perception import Quadrant, quadrant
from app.services import perception
from app.services.cases import open_recovery_cases
from app.services.cells import Cell, change_between
from app.services.counting import count
from app.services.coverage import decision_maker_answered, last_answered_by_account
from app.services.movements import downward_by_account
from app.services.risk_findings import (
    BlindSpot,
    DecisionMakerDetractor,
    DetractorAnswer,
    Finding,
    Flagged,
    KeyStakeholderDowngrade,
    LowNps,
    NoDecisionMakerAnswer,
    Rules,
    SignificantDecline,
    Silent,
)
from app.services.selection import Counting, Dimension, Filters, Window, preceding
from app.sql import is_category

KEY_ROLES = (Role.DECISION_MAKER, Role.INFLUENCER)


@dataclass(frozen=True, slots=True)
class Summary:
    accounts: int
    revenue_at_risk: Decimal
    by_reason: dict[Reason, int]


@dataclass(frozen=True, slots=True)
class AtRiskPage:
    window: Window
    summary: Summary
    accounts: list[Flagged]
    next_cursor: str | None


async def _decision_maker_detractors(
    session: AsyncSession, workspace_id: uuid.UUID, window: Window, account_id: str | None
) -> dict[str, list[DetractorAnswer]]:
    """Decision makers whose latest answer in the window is a detractor's, per account."""
    # Each person's latest answer in the window, read off the chain (app.services.chain).
    query = (
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
            is_category(SurveyResponse.score, Category.DETRACTOR),
        )
        .order_by(SurveyResponse.account_id, SurveyResponse.stakeholder_id)
    )
    if account_id is not None:
        query = query.where(SurveyResponse.account_id == account_id)
    out: dict[str, list[DetractorAnswer]] = {}
    for account, stakeholder_id, response_id, score, submitted_at in await session.execute(query):
        out.setdefault(account, []).append(
            DetractorAnswer(
                stakeholder_id=stakeholder_id,
                response_id=response_id,
                score=score,
                submitted_at=submitted_at,
            )
        )
    return out


async def _registered_decision_makers(
    session: AsyncSession, workspace_id: uuid.UUID, account_id: str | None
) -> dict[str, int]:
    query = select(Stakeholder.account_id, func.count()).where(
        Stakeholder.workspace_id == workspace_id,
        Stakeholder.role == Role.DECISION_MAKER.value,
    )
    if account_id is not None:
        query = query.where(Stakeholder.account_id == account_id)
    rows = await session.execute(query.group_by(Stakeholder.account_id))
    return {row[0]: row[1] for row in rows}


async def find_at_risk(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    window: Window,
    counting: Counting,
    rules: Rules,
    segment: str | None = None,
    industry: str | None = None,
    reasons: Sequence[Reason] | None = None,
    limit: int,
    cursor: str | None = None,
) -> AtRiskPage:
    """One page of flagged accounts (with any of `reasons`), by annual revenue (largest first,
    unknown last) then id, and the summary over every page."""
    previous = preceding(window)
    after = None if cursor is None else _decode(cursor)
    assessed = await _assess(
        session,
        workspace_id,
        window=window,
        previous=previous,
        counting=counting,
        rules=rules,
        segment=segment,
        industry=industry,
    )
    flagged = sorted((f for f in assessed if f.findings), key=lambda f: f.sort_key)
    if reasons:
        wanted = set(reasons)
        flagged = [f for f in flagged if wanted.intersection(f.codes)]
    by_reason = dict.fromkeys(Reason, 0)
    for item in flagged:
        for code in item.codes:
            by_reason[code] += 1
    summary = Summary(
        accounts=len(flagged),
        revenue_at_risk=sum((f.account.annual_revenue or Decimal(0) for f in flagged), Decimal(0)),
        by_reason=by_reason,
    )
    if after is not None:
        flagged = [f for f in flagged if f.sort_key > after]
    page = flagged[:limit]
    next_cursor = _encode(page[-1]) if len(flagged) > limit else None
    return AtRiskPage(window=window, summary=summary, accounts=page, next_cursor=next_cursor)


def _encode(item: Flagged) -> str:
    return encode_key([item.revenue, item.account.id])


def _decode(cursor: str) -> tuple[bool, float, str]:
    def parse(values: list[Any]) -> tuple[bool, float, str]:
        revenue, account_id = values
        if not isinstance(account_id, str) or not (
            revenue is None or isinstance(revenue, int | float)
        ):
            raise TypeError(values)
        return (revenue is None, -float(revenue or 0.0), account_id)

    return decode_key(cursor, parse)


async def assess_account(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    account_id: str,
    *,
    window: Window,
    counting: Counting,
    rules: Rules,
) -> Flagged | None:
    """One account checked against the rules as find_at_risk checks every account: its
    findings (none: it is not at risk), its score and its open cases; None when there is no
    such account."""
    assessed = await _assess(
        session,
        workspace_id,
        window=window,
        previous=preceding(window),
        counting=counting,
        rules=rules,
        account_id=account_id,
    )
    return assessed[0] if assessed else None


async def assess_accounts(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    window: Window,
    counting: Counting,
    rules: Rules,
    segment: str | None = None,
    industry: str | None = None,
) -> list[Flagged]:
    """Every account (of `segment`, `industry`), by id, each checked as find_at_risk checks
    it: its score in the window and its findings (none: not at risk). For the export."""
    assessed = await _assess(
        session,
        workspace_id,
        window=window,
        previous=preceding(window),
        counting=counting,
        rules=rules,
        segment=segment,
        industry=industry,
    )
    return sorted(assessed, key=lambda f: f.account.id)


async def _assess(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    window: Window,
    previous: Window,
    counting: Counting,
    rules: Rules,
    segment: str | None = None,
    industry: str | None = None,
    account_id: str | None = None,
) -> list[Flagged]:
    """Every account (or the one) with its findings, none when it is not at risk."""
    query = select(Account).where(Account.workspace_id == workspace_id)
    if segment is not None:
        query = query.where(Account.segment == segment)
    if industry is not None:
        query = query.where(Account.industry == industry)
    if account_id is not None:
        query = query.where(Account.id == account_id)
    accounts = list(await session.scalars(query))
    if not accounts:
        return []
    selection = counting.selection(
        (window, previous), Filters(account_id=account_id, segment=segment, industry=industry)
    )
    cells = await count(session, workspace_id, selection, (Dimension.ACCOUNT,))
    detractors = await _decision_maker_detractors(session, workspace_id, window, account_id)
    falls = await downward_by_account(
        session, workspace_id, window=window, roles=KEY_ROLES, account_id=account_id
    )
    last_heard = await last_answered_by_account(
        session, workspace_id, before=window.end, account_id=account_id
    )
    heard_decision_maker = await decision_maker_answered(
        session, workspace_id, window=window, account_id=account_id
    )
    registered = await _registered_decision_makers(session, workspace_id, account_id)
    open_cases = await open_recovery_cases(session, workspace_id, account_id=account_id)
    perceived = None
    if counting.method is not Method.ACCOUNT_AS_UNIT:
        perceived = await perception.gather(
            session,
            workspace_id,
            windows=[window],
            counting=counting,
            filters=Filters(account_id=account_id, segment=segment, industry=industry),
        )
    quiet_since = window.end - timedelta(days=rules.silent_days)
    options = counting.options

    assessed = []
    for account in accounts:
        now, before = cells.get((0, account.id), Cell()), cells.get((1, account.id), Cell())
        findings: list[Finding] = []
        nps, n = now.nps, now.tally.n
        if nps is not None and nps < rules.nps_below and n >= options.min_n:
            findings.append(LowNps(nps, rules.nps_below, n))
        if answers := detractors.get(account.id):
            findings.append(DecisionMakerDetractor(answers))
        change = change_between(now, before, confidence=options.confidence)
        if change is not None and change.significant and change.difference < 0:
            findings.append(SignificantDecline(previous, before.nps, change))
        if moves := falls.get(account.id):
            findings.append(KeyStakeholderDowngrade(moves))
        last = last_heard.get(account.id)
        if last is None or last < quiet_since:
            findings.append(Silent(last, rules.silent_days))
        if account.id not in heard_decision_maker:
            findings.append(NoDecisionMakerAnswer(registered.get(account.id, 0)))
        if perceived is not None:
            seen = perception.compare(perceived, 0, account.id, None)
            if (
                seen.counted
                and seen.team is not None
                and seen.clients is not None
                and quadrant(seen.team, seen.clients) is Quadrant.BLIND_SPOT
            ):
                findings.append(BlindSpot(seen.team, seen.clients, len(seen.counted)))
        assessed.append(Flagged(account, now, findings, open_cases.get(account.id, [])))
    return assessed
