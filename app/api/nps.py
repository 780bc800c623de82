"""Scores: the workspace or a filtered slice, with breakdowns, and one account's score."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.accounts import AccountId
from app.api.deps import ReadAuth, utcnow
from app.db import ReadSessionDep
from app.errors import Unprocessable, field_error
from app.models import JobLevel, Role
from app.schemas import ID_PATTERN, AccountNpsReport, NpsReport, Timestamp
from app.scoring import CIMethod
from app.services import accounts
from app.services.nps import (
    Dimension,
    Filters,
    Method,
    ScoreOptions,
    Selection,
    Window,
    count,
    groups_read,
    marginal,
    score_read,
    total,
)

router = APIRouter(prefix="/v1", tags=["scores"])

DEFAULT_WINDOW = timedelta(days=365)

From = Annotated[
    Timestamp | None,
    Query(alias="from", description="start, inclusive (RFC 3339); default 365 days before `to`"),
]
To = Annotated[Timestamp | None, Query(description="end, exclusive (RFC 3339); default now")]
MethodQuery = Annotated[Method, Query(description="how responses are counted")]
CIMethodQuery = Annotated[CIMethod, Query(description="confidence interval method")]
Confidence = Annotated[float, Query(ge=0.5, le=0.999, description="interval level")]
Text = Annotated[str | None, Query(min_length=1, max_length=100)]


def _window(start: datetime | None, end: datetime | None) -> Window:
    end = (end or utcnow()).astimezone(UTC)
    start = (start or end - DEFAULT_WINDOW).astimezone(UTC)
    if start >= end:
        raise Unprocessable(
            "`from` must be before `to`",
            errors=[field_error(["query", "from"], "not before `to`")],
        )
    return Window(start, end)


@router.get("/nps", response_model=NpsReport, operation_id="get_nps")
async def get_nps(
    session: ReadSessionDep,
    auth: ReadAuth,
    from_: From = None,
    to: To = None,
    account_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    role: Role | None = None,
    job_level: JobLevel | None = None,
    department: Text = None,
    segment: Text = None,
    industry: Text = None,
    survey: Text = None,
    group_by: Dimension | None = None,
    method: MethodQuery = Method.LATEST_PER_STAKEHOLDER,
    ci_method: CIMethodQuery = CIMethod.ADJUSTED_WALD,
    confidence: Confidence = 0.95,
) -> NpsReport:
    """The score over a window and filters, optionally broken down by one dimension."""
    window = _window(from_, to)
    filters = Filters(account_id, role, job_level, department, segment, industry, survey)
    options = ScoreOptions(ci_method=ci_method, confidence=confidence)
    dimensions = () if group_by is None else (group_by,)
    cells = await count(session, auth.workspace_id, Selection(window, filters, method), dimensions)
    return NpsReport(
        method=method.value,
        from_=window.start,
        to=window.end,
        filters=filters.echo(),
        score=score_read(total(cells), options),
        groups=None if group_by is None else groups_read(group_by, marginal(cells, 0), options),
    )


BREAKDOWNS = (Dimension.ROLE, Dimension.JOB_LEVEL, Dimension.DEPARTMENT)


@router.get(
    "/accounts/{account_id}/nps",
    response_model=AccountNpsReport,
    operation_id="get_account_nps",
    tags=["accounts"],
)
async def get_account_nps(
    account_id: AccountId,
    session: ReadSessionDep,
    auth: ReadAuth,
    from_: From = None,
    to: To = None,
    survey: Text = None,
    method: MethodQuery = Method.LATEST_PER_STAKEHOLDER,
    ci_method: CIMethodQuery = CIMethod.ADJUSTED_WALD,
    confidence: Confidence = 0.95,
) -> AccountNpsReport:
    """One account's score with its breakdown by role, job level and department."""
    await accounts.get_account(session, auth.workspace_id, account_id)
    window = _window(from_, to)
    options = ScoreOptions(ci_method=ci_method, confidence=confidence)
    selection = Selection(window, Filters(account_id=account_id, survey=survey), method)
    # One statement for the total and every breakdown, so they come from one snapshot.
    cells = await count(session, auth.workspace_id, selection, BREAKDOWNS)
    return AccountNpsReport(
        account_id=account_id,
        method=method.value,
        from_=window.start,
        to=window.end,
        score=score_read(total(cells), options),
        breakdowns={
            dim.value: groups_read(dim, marginal(cells, i), options)
            for i, dim in enumerate(BREAKDOWNS)
        },
    )
