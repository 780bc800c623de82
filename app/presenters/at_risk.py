"""At-risk schemas from app.services.risk_findings' findings, with a sentence for each reason."""

from datetime import datetime

from app.presenters.movements import movement_read
from app.presenters.scores import benchmark_standing, present_change, score_read
from app.schemas.at_risk import (
    AtRiskAccount,
    AtRiskPage,
    AtRiskSummary,
    BlindSpot,
    DecisionMakerDetractor,
    DetractorAnswer,
    KeyStakeholderDowngrade,
    LowNps,
    NoDecisionMakerAnswer,
    RiskReason,
    SignificantDecline,
    Silent,
)
from app.schemas.cases import OpenCases
from app.services import risk_findings as found
from app.services.at_risk import AtRiskPage as FoundPage
from app.services.selection import Counting


def _day(moment: datetime) -> str:
    return moment.date().isoformat()


def reason_read(finding: found.Finding, counting: Counting) -> RiskReason:
    match finding:
        case found.LowNps(nps=nps, threshold=threshold, n=n):
            return LowNps(
                detail=f"NPS {nps:.1f} is below {threshold:g} (n = {n})",
                nps=nps,
                threshold=threshold,
                n=n,
            )
        case found.DecisionMakerDetractor(answers=answers):
            return DecisionMakerDetractor(
                detail=f"{len(answers)} decision maker(s) gave a detractor score",
                answers=[DetractorAnswer.model_validate(a) for a in answers],
            )
        case found.SignificantDecline(previous=previous, previous_nps=previous_nps, change=c):
            change = present_change(c, counting.options)
            assert change is not None
            return SignificantDecline(
                detail=f"NPS fell {-c.difference:.1f} points against the previous period "
                f"(p = {c.p_value:.3f})",
                previous_from=previous.start,
                previous_to=previous.end,
                previous_nps=previous_nps,
                change=change,
            )
        case found.KeyStakeholderDowngrade(movements=moves):
            return KeyStakeholderDowngrade(
                detail=f"{len(moves)} fall(s) by decision makers or influencers",
                movements=[movement_read(m) for m in moves],
            )
        case found.Silent(last_answered_at=last, silent_days=days):
            since = "never answered" if last is None else f"last answer on {_day(last)}"
            return Silent(
                detail=f"no answer in {days} days ({since})",
                last_answered_at=last,
                silent_days=days,
            )
        case found.NoDecisionMakerAnswer(registered_decision_makers=registered):
            return NoDecisionMakerAnswer(
                detail=f"no decision-maker answer in the window ({registered} registered)",
                registered_decision_makers=registered,
            )
        case found.BlindSpot(predicted_score=team, mean_score=clients, authors=authors):
            return BlindSpot(
                detail=f"the team predicts {team:.1f}, its clients average {clients:.1f}",
                predicted_score=team,
                mean_score=clients,
                gap=team - clients,
                authors=authors,
            )
    raise AssertionError(finding)  # pragma: no cover - the match is exhaustive


def flagged_read(item: found.Flagged, counting: Counting) -> AtRiskAccount:
    account = item.account
    score = score_read(item.cell, counting.options)
    return AtRiskAccount(
        account_id=account.id,
        name=account.name,
        segment=account.segment,
        industry=account.industry,
        annual_revenue=account.annual_revenue,
        currency=account.currency,
        score=score,
        benchmark=benchmark_standing(account.industry, score.nps, counting.benchmarks),
        reasons=[reason_read(f, counting) for f in item.findings],
        open_case=OpenCases(count=len(item.open_cases), case_ids=item.open_cases),
    )


def at_risk_page_read(page: FoundPage, counting: Counting) -> AtRiskPage:
    summary = page.summary
    return AtRiskPage(
        method=counting.method.value,
        from_=page.window.start,
        to=page.window.end,
        summary=AtRiskSummary(
            accounts=summary.accounts,
            revenue_at_risk=summary.revenue_at_risk,
            by_reason={code.value: n for code, n in summary.by_reason.items()},
        ),
        data=[flagged_read(item, counting) for item in page.accounts],
        next_cursor=page.next_cursor,
    )
