"""Accounts at risk, with reasons and evidence, largest revenue first."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.api.deps import Cursor, Limit, ReadAuth
from app.api.score_params import CountingDep, From, Text, To, preceding
from app.api.settings import WorkspaceSettingsDep
from app.db import ReadSessionDep
from app.pagination import DEFAULT_LIMIT, decode_key, encode_key
from app.schemas.at_risk import AtRiskAccount, AtRiskPage, AtRiskSummary, Reason
from app.services.at_risk import Rules, Scoring, find_at_risk

# Registered before the accounts router, so `at-risk` is never read as an account id.
router = APIRouter(prefix="/v1/accounts", tags=["accounts"])


def _encode(item: AtRiskAccount) -> str:
    return encode_key([item.annual_revenue, item.account_id])


def _decode(cursor: str) -> tuple[bool, float, str]:
    def parse(values: list[Any]) -> tuple[bool, float, str]:
        revenue, account_id = values
        if not isinstance(account_id, str) or not (
            revenue is None or isinstance(revenue, int | float)
        ):
            raise TypeError(values)
        return (revenue is None, -float(revenue or 0.0), account_id)

    return decode_key(cursor, parse)


@router.get("/at-risk", response_model=AtRiskPage, operation_id="list_at_risk_accounts")
async def list_at_risk_accounts(
    session: ReadSessionDep,
    auth: ReadAuth,
    settings: WorkspaceSettingsDep,
    counting: CountingDep,
    from_: From = None,
    to: To = None,
    reason: Annotated[
        list[Reason] | None, Query(description="only accounts with one of these reasons")
    ] = None,
    segment: Text = None,
    industry: Text = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> AtRiskPage:
    """Accounts with a reason for concern, each with its evidence, largest revenue first."""
    counting.require_per_account()
    window = counting.window(from_, to)
    flagged = await find_at_risk(
        session,
        auth.workspace_id,
        window=window,
        previous=preceding(window),
        scoring=Scoring(counting.method, counting.weighting, counting.options, counting.benchmarks),
        rules=Rules(settings.at_risk.nps_below, settings.at_risk.silent_days),
        segment=segment,
        industry=industry,
    )
    if reason:
        wanted = set(reason)
        flagged = [f for f in flagged if wanted.intersection(f.codes)]
    by_reason = {code.value: 0 for code in Reason}
    for item in flagged:
        for code in item.codes:
            by_reason[code.value] += 1
    summary = AtRiskSummary(
        accounts=len(flagged),
        revenue_at_risk=sum(f.revenue or 0.0 for f in flagged),
        by_reason=by_reason,
    )
    if cursor is not None:
        after = _decode(cursor)
        flagged = [f for f in flagged if f.sort_key > after]
    page = [f.build() for f in flagged[:limit]]
    return AtRiskPage(
        method=counting.method.value,
        from_=window.start,
        to=window.end,
        summary=summary,
        data=page,
        next_cursor=_encode(page[-1]) if len(flagged) > limit else None,
    )
