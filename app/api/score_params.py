"""Query parameters shared by the score endpoints: window, filters, method and intervals."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import Depends, Query

from app.api.deps import utcnow
from app.api.settings import WorkspaceSettingsDep
from app.errors import invalid_query
from app.industries import Range
from app.models import JobLevel, Role
from app.schemas import ID_PATTERN, Timestamp
from app.schemas.scores import WeightsRead
from app.scoring import CIMethod, Method
from app.services.cells import Cells
from app.services.nps import Dimension, Filters, Weighting, Window
from app.services.reports import ScoreOptions
from app.services.settings import benchmark_table

From = Annotated[
    Timestamp | None,
    Query(
        alias="from",
        description="start, inclusive (RFC 3339); default: the workspace's "
        "default window (365 days) before `to`",
    ),
]
To = Annotated[Timestamp | None, Query(description="end, exclusive (RFC 3339); default now")]
Text = Annotated[str | None, Query(min_length=1, max_length=100)]
PORTFOLIO_GROUPS = (None, Dimension.SEGMENT, Dimension.INDUSTRY)


def make_window(start: datetime | None, end: datetime | None, days: int = 365) -> Window:
    end = (end or utcnow()).astimezone(UTC)
    start = (start or end - timedelta(days=days)).astimezone(UTC)
    if start >= end:
        raise invalid_query("from", "`from` must be before `to`", "not before `to`")
    return Window(start, end)


def preceding(window: Window) -> Window:
    """The period of equal length right before `window`."""
    try:
        return Window(window.start - (window.end - window.start), window.start)
    except OverflowError:
        message = "the period before this window would start before the year 1"
        raise invalid_query("from", message) from None


def query_filters(
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


@dataclass(frozen=True, slots=True)
class Counting:
    """The method, its weights and the interval options of one request."""

    method: Method
    weighting: Weighting | None
    by_revenue: bool
    options: ScoreOptions
    window_days: int
    benchmarks: dict[str, Range]

    def window(self, start: datetime | None, end: datetime | None) -> Window:
        return make_window(start, end, self.window_days)

    def require_portfolio(self, filters: Filters, group_by: Dimension | None) -> None:
        """account_as_unit counts accounts, so it only fits views across accounts."""
        if self.method is not Method.ACCOUNT_AS_UNIT:
            return
        if filters.account_id is not None or group_by not in PORTFOLIO_GROUPS:
            raise invalid_query(
                "method",
                "account_as_unit applies to portfolio views only: no account_id, and group_by "
                "absent, segment or industry",
            )

    def require_per_account(self) -> None:
        """Scores of single accounts have no accounts to count as units."""
        if self.method is Method.ACCOUNT_AS_UNIT:
            raise invalid_query(
                "method", "account_as_unit applies to portfolio views, not to one account's score"
            )

    def weights_read(self, cells: Cells) -> WeightsRead | None:
        if self.method is Method.ROLE_WEIGHTED and self.weighting is not None:
            return WeightsRead(
                role=dict(self.weighting.role), job_level=dict(self.weighting.job_level)
            )
        if self.method is not Method.ACCOUNT_AS_UNIT:
            return None
        missing = set().union(*(c.without_revenue for c in cells.values()))
        return WeightsRead(
            role=None if self.weighting is None else dict(self.weighting.role),
            job_level=None if self.weighting is None else dict(self.weighting.job_level),
            account="revenue" if self.by_revenue else "equal",
            accounts_without_revenue=sorted(missing) if self.by_revenue else None,
        )


def counting(
    settings: WorkspaceSettingsDep,
    method: Annotated[
        Method | None,
        Query(description="how responses are counted; default: the workspace's default method"),
    ] = None,
    weight: Annotated[
        Literal["revenue"] | None,
        Query(description="account_as_unit: weight accounts by annual revenue"),
    ] = None,
    account_mean: Annotated[
        Literal["plain", "role_weighted"] | None,
        Query(description="account_as_unit: each account's mean score, plain or role-weighted"),
    ] = None,
    ci_method: Annotated[
        CIMethod | None, Query(description="confidence interval method; default adjusted_wald")
    ] = None,
    confidence: Annotated[
        float | None, Query(ge=0.5, le=0.999, description="interval level; default 0.95")
    ] = None,
) -> Counting:
    chosen = method or Method(settings.default_method)
    if chosen is not Method.ACCOUNT_AS_UNIT:
        if weight is not None:
            raise invalid_query("weight", "weight applies to method=account_as_unit only")
        if account_mean is not None:
            raise invalid_query(
                "account_mean", "account_mean applies to method=account_as_unit only"
            )
    weighting = None
    if chosen is Method.ROLE_WEIGHTED or account_mean == "role_weighted":
        weighting = Weighting(
            role=settings.role_weights.model_dump(),
            job_level=settings.job_level_weights.model_dump(),
        )
    return Counting(
        method=chosen,
        weighting=weighting,
        by_revenue=weight == "revenue",
        options=ScoreOptions(
            ci_method=ci_method or settings.default_ci_method,
            confidence=settings.default_confidence if confidence is None else confidence,
            min_n=settings.min_n,
            low_n=settings.low_n,
        ),
        window_days=settings.default_window_days,
        benchmarks=benchmark_table(settings),
    )


CountingDep = Annotated[Counting, Depends(counting)]
