"""Query parameters shared by the score endpoints: window, filters, method and intervals."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from pydantic import BeforeValidator

from app.api.deps import utcnow
from app.api.settings import WorkspaceSettingsDep
from app.errors import invalid_query
from app.models import JobLevel, Role
from app.schemas import ID_PATTERN, Timestamp
from app.schemas.settings import WorkspaceSettings
from app.scoring import CIMethod, Method
from app.services.selection import Counting, Filters, RequestedWindow
from app.services.settings import counting_from

From = Annotated[
    Timestamp | None,
    Query(
        alias="from",
        description="start, inclusive (RFC 3339); must be before `to`; default: the "
        "workspace's default window (`default_window_days`, 365) before `to`",
    ),
]
To = Annotated[
    Timestamp | None,
    Query(
        description="end, exclusive (RFC 3339); default: the end of the current minute (UTC), "
        "so polls within a minute count the same answers; with `from` alone, `to` is still "
        "this default, and with `to` alone `from` is the default window before it"
    ),
]
Text = Annotated[str | None, Query(min_length=1, max_length=100)]


# Where the report's tag (app.api.report_tags.ReportTags) leaves the instant it was made at.
REQUEST_INSTANT = "nps.request_instant"


def instant() -> datetime:
    """Now, for a request's one instant (tests move this module's clock)."""
    return utcnow()


async def request_now(request: Request) -> datetime:
    """The request's one instant: the window and the report's ETag (app.api.report_tags) are
    defaulted from the same one, so a minute's end between them cannot tell them apart."""
    made: datetime | None = request.scope.get(REQUEST_INSTANT)
    return made if made is not None else instant()


RequestNow = Annotated[datetime, Depends(request_now)]


async def query_window(
    settings: WorkspaceSettingsDep, now: RequestNow, from_: From = None, to: To = None
) -> RequestedWindow:
    """`from` and `to`, defaulted by the workspace's settings once the handler resolves them."""
    return RequestedWindow(from_, to, settings.default_window_days, now)


WindowDep = Annotated[RequestedWindow, Depends(query_window)]


async def query_filters(
    account_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    role: Role | None = None,
    job_level: JobLevel | None = None,
    department: Text = None,
    segment: Text = None,
    industry: Text = None,
    survey: Text = None,
) -> Filters:
    return Filters(account_id, role, job_level, department, segment, industry, survey)


FiltersDep = Annotated[Filters, Depends(query_filters)]


CIMethodParam = Annotated[
    CIMethod | None,
    Query(description="confidence interval method (docs/scoring.md); default adjusted_wald"),
]
Confidence = Annotated[
    float | None, Query(ge=0.5, le=0.999, description="interval level; default 0.95")
]


async def counting(
    settings: WorkspaceSettingsDep,
    method: Annotated[
        Method | None,
        Query(
            description="how responses are counted; default: the workspace's default method. "
            "account_as_unit fits portfolio views only: no `account_id`, and `group_by` absent, "
            "segment or industry (else 422)"
        ),
    ] = None,
    weight: Annotated[
        Literal["revenue"] | None,
        Query(
            description="only with method=account_as_unit (else 422): weight accounts by annual "
            "revenue; accounts without revenue are left out and listed"
        ),
    ] = None,
    account_mean: Annotated[
        Literal["plain", "role_weighted"] | None,
        Query(
            description="only with method=account_as_unit (else 422): each account's mean "
            "score, plain or role-weighted"
        ),
    ] = None,
    ci_method: CIMethodParam = None,
    confidence: Confidence = None,
) -> Counting:
    """Counting across accounts: every method, account_as_unit's options included."""
    return counting_from(
        settings, method, ci_method, confidence, weight=weight, account_mean=account_mean
    )


CountingDep = Annotated[Counting, Depends(counting)]


class AccountMethod(StrEnum):
    """The methods that count one account's answers: every Method but account_as_unit."""

    RESPONDENT = "respondent"
    LATEST_PER_STAKEHOLDER = "latest_per_stakeholder"
    ROLE_WEIGHTED = "role_weighted"
    DECISION_MAKER_FIRST = "decision_maker_first"


PORTFOLIO_ONLY = "portfolio-only (method=account_as_unit): use GET /v1/nps"
# What the strict-parameter gate (app.routing) tells a caller who sends these to another view.
PORTFOLIO_HINTS = {
    "weight": f"weight is {PORTFOLIO_ONLY}",
    "account_mean": f"account_mean is {PORTFOLIO_ONLY}",
    "account_as_unit": f"account_as_unit is a `method`, {PORTFOLIO_ONLY}",
}


def _not_account_as_unit(value: Any) -> Any:
    if value == Method.ACCOUNT_AS_UNIT.value:
        raise ValueError(f"account_as_unit counts accounts, so it is {PORTFOLIO_ONLY}")
    return value


async def account_counting(
    settings: WorkspaceSettingsDep,
    method: Annotated[
        AccountMethod | None,
        BeforeValidator(_not_account_as_unit),
        Query(description="how responses are counted; default: the workspace's default method"),
    ] = None,
    ci_method: CIMethodParam = None,
    confidence: Confidence = None,
) -> Counting:
    """Counting within accounts: no account_as_unit, so none of its options are declared.

    The workspace's default method may still be account_as_unit: `require_per_account`."""
    chosen = None if method is None else Method(method.value)
    return counting_from(settings, chosen, ci_method, confidence)


AccountCountingDep = Annotated[Counting, Depends(account_counting)]


async def driver_counting(
    settings: WorkspaceSettingsDep,
    method: Annotated[
        AccountMethod | None,
        BeforeValidator(_not_account_as_unit),
        Query(
            description="how responses are counted, as in /v1/nps; default: the workspace's "
            "default method (account_as_unit does not apply: drivers regress answers)"
        ),
    ] = None,
    confidence: Annotated[
        float | None,
        Query(ge=0.5, le=0.999, description="level of the importance intervals; default 0.95"),
    ] = None,
) -> Counting:
    """Counting for analyses of single answers: every Method but account_as_unit."""
    chosen = None if method is None else Method(method.value)
    counting = counting_from(settings, chosen, None, confidence)
    if counting.method is Method.ACCOUNT_AS_UNIT:
        raise invalid_query(
            "method",
            "the workspace's default method is account_as_unit, which counts accounts; drivers "
            "regress single answers: name another `method`",
        )
    return counting


DriverCountingDep = Annotated[Counting, Depends(driver_counting)]


def _answer_method(settings: WorkspaceSettings, method: AccountMethod | None, what: str) -> Method:
    chosen = Method(method.value) if method is not None else Method(settings.default_method)
    if chosen is Method.ACCOUNT_AS_UNIT:
        raise invalid_query(
            "method",
            f"the workspace's default method is account_as_unit, which counts accounts; {what} "
            "count single answers: name another `method`",
        )
    return chosen


AnswerMethod = Annotated[
    AccountMethod | None,
    BeforeValidator(_not_account_as_unit),
    Query(
        description="how responses are counted, as in /v1/nps; default: the workspace's "
        "default method (account_as_unit does not apply: comments are single answers')"
    ),
]


async def theme_counting(
    settings: WorkspaceSettingsDep,
    method: AnswerMethod = None,
    ci_method: CIMethodParam = None,
    confidence: Confidence = None,
) -> Counting:
    """Counting for scores of answers picked by their comments: every Method but
    account_as_unit, with the interval options."""
    chosen = _answer_method(settings, method, "themes")
    return counting_from(settings, chosen, ci_method, confidence)


ThemeCountingDep = Annotated[Counting, Depends(theme_counting)]


async def comment_counting(settings: WorkspaceSettingsDep, method: AnswerMethod = None) -> Counting:
    """Counting for analyses of the comments alone: which answers count, nothing else."""
    return counting_from(settings, _answer_method(settings, method, "suggested themes"))


CommentCountingDep = Annotated[Counting, Depends(comment_counting)]
