"""What a score is made of: windows, filters, the counting method and its weights.

Plain values, built once per request (`Counting.selection`) and read by app.services.counting,
which turns them into one SQL statement, and by the presenters, which echo them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from app.errors import invalid_query
from app.industries import Range, RoleTable
from app.models import JobLevel, Role
from app.scoring import CIMethod, Method
from app.sql import department_value


class Dimension(StrEnum):
    ROLE = "role"
    JOB_LEVEL = "job_level"
    DEPARTMENT = "department"
    ACCOUNT = "account"
    SEGMENT = "segment"
    INDUSTRY = "industry"
    SURVEY = "survey"


KEY_NAMES = {Dimension.ACCOUNT: "account_id"}
# Cut by the account's current profile rather than by the answer.
ACCOUNT_DIMENSIONS = frozenset({Dimension.SEGMENT, Dimension.INDUSTRY})
# account_as_unit counts accounts, so it only fits views across accounts.
PORTFOLIO_GROUPS = (None, Dimension.SEGMENT, Dimension.INDUSTRY)


def column_name(dim: Dimension) -> str:
    """The name a dimension's values go by in groups and filters (`account` is `account_id`)."""
    return KEY_NAMES.get(dim, dim.value)


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end): every instant in UTC."""

    start: datetime
    end: datetime


def default_end(now: datetime) -> datetime:
    """The end of the minute `now` is in: a window left open ends there, so two polls in the same
    minute count the same answers and can get an identical body, and nothing sent before the poll
    is left out."""
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    return minute + timedelta(minutes=1)


def make_window(
    start: datetime | None, end: datetime | None, *, days: int, now: datetime
) -> Window:
    """The window a request names; `end` defaults to default_end(now), `start` to `days` before."""
    end = (end or default_end(now)).astimezone(UTC)
    start = (start or end - timedelta(days=days)).astimezone(UTC)
    if start >= end:
        raise invalid_query("from", "`from` must be before `to`", "not before `to`")
    return Window(start, end)


@dataclass(frozen=True, slots=True)
class RequestedWindow:
    """`from` and `to` as a request gave them, with what defaults them; `resolve()` checks them.

    Resolved where the request is validated, after the checks that come first (an unknown
    account is a 404, a method that does not fit a 422 on `method`).
    """

    start: datetime | None
    end: datetime | None
    days: int
    now: datetime

    def resolve(self) -> Window:
        return make_window(self.start, self.end, days=self.days, now=self.now)


def preceding(window: Window) -> Window:
    """The period of equal length right before `window`."""
    try:
        return Window(window.start - (window.end - window.start), window.start)
    except OverflowError:
        message = "the period before this window would start before the year 1"
        raise invalid_query("from", message) from None


@dataclass(frozen=True, slots=True)
class Filters:
    account_id: str | None = None
    role: Role | None = None
    job_level: JobLevel | None = None
    department: str | None = None
    segment: str | None = None
    industry: str | None = None
    survey: str | None = None

    def echo(self) -> dict[str, str]:
        return {k: str(v) for k in self.__slots__ if (v := getattr(self, k)) is not None}

    def wanted(self) -> dict[str, str]:
        """The filters on an answer or its account, as the stored values they must equal."""
        values = {
            "account_id": self.account_id,
            "role": None if self.role is None else self.role.value,
            "job_level": None if self.job_level is None else self.job_level.value,
            "department": None if self.department is None else department_value(self.department),
            "segment": self.segment,
            "industry": self.industry,
        }
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Weighting:
    """Role weights times job-level weights, per response."""

    role: Mapping[str, float]
    job_level: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Selection:
    """Which responses a score is made of, and how they are counted, in each window."""

    windows: Sequence[Window]
    filters: Filters
    method: Method
    # role_weighted; under account_as_unit, the weights of each account's mean score.
    weighting: Weighting | None = None
    by_revenue: bool = False  # account_as_unit: accounts weighted by annual revenue


@dataclass(frozen=True, slots=True)
class ScoreOptions:
    ci_method: CIMethod = CIMethod.ADJUSTED_WALD
    confidence: float = 0.95
    min_n: int = 5
    low_n: int = 30


@dataclass(frozen=True, slots=True)
class Counting:
    """The method, its weights and the interval options of one request."""

    method: Method
    weighting: Weighting | None
    by_revenue: bool
    options: ScoreOptions
    benchmarks: dict[str, Range]
    role_benchmarks: RoleTable

    def selection(self, windows: Sequence[Window], filters: Filters = Filters()) -> Selection:
        """The one place a Selection is made: these windows and filters, counted this way."""
        return Selection(tuple(windows), filters, self.method, self.weighting, self.by_revenue)

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
