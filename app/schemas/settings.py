"""Workspace settings: weights, precision thresholds, defaults, benchmarks, at-risk, survey and
case rules."""

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from app.industries import normalise_industry
from app.models import Role
from app.schemas.base import Strict
from app.schemas.case_rules import CaseRule, CaseRules, default_case_rules
from app.scoring import CIMethod
from app.text import words

# Bounded so sums of squared weights stay finite and ratios stay meaningful.
Weight = Annotated[float, Field(strict=True, ge=0.001, le=1000, allow_inf_nan=False)]
Points = Annotated[float, Field(strict=True, ge=-100, le=100, allow_inf_nan=False)]
Industry = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(normalise_industry)
]
CompanyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
DefaultMethod = Literal[
    "respondent", "latest_per_stakeholder", "role_weighted", "decision_maker_first"
]


class RoleWeights(Strict):
    """Weights of a response by the respondent's role; a role left out keeps its default."""

    decision_maker: Weight = 3.0
    influencer: Weight = 2.0
    user: Weight = 1.0
    other: Weight = 1.0


class JobLevelWeights(Strict):
    """Multiply the role weight; all 1 by default."""

    executive: Weight = 1.0
    director: Weight = 1.0
    manager: Weight = 1.0
    individual_contributor: Weight = 1.0
    other: Weight = 1.0


class BenchmarkRange(Strict):
    low: Points
    high: Points = Field(description="not below `low`")

    @field_validator("high")
    @classmethod
    def _ordered(cls, high: float, info: ValidationInfo) -> float:
        low = info.data.get("low")
        if low is not None and high < low:
            raise ValueError("high must not be below low")
        return high


RoleBenchmarks = dict[Role, BenchmarkRange]


class AtRiskRules(Strict):
    nps_below: Points = Field(0.0, description="flag an account whose NPS is below this")
    silent_days: int = Field(
        90, strict=True, ge=1, le=3650, description="flag an account silent this many days"
    )


def _days(default: int, what: str) -> Any:
    return Field(default, strict=True, ge=0, le=3650, description=f"{what}; 0 turns the rule off")


class SurveyRules(Strict):
    """Fatigue rules: when an invitation is suppressed instead of issued (across channels)."""

    resurvey_after_days: int = _days(90, "no invitation within this many days of an answer")
    after_dismissal_days: int = _days(30, "none within this many days of a dismissal")
    after_unanswered_days: int = _days(
        30, "none within this many days of an invitation that expired unanswered"
    )
    max_per_account: int | None = Field(
        None,
        strict=True,
        ge=1,
        le=1_000_000,
        description="at most this many open invitations per account and survey; null: no limit",
    )


_HOST = re.compile(
    r"^(?:\[[0-9a-f:.]+\]"  # an IPv6 literal
    r"|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*)$"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _exact_origin(value: str) -> str:
    """An origin exactly as a browser sends it in `Origin`, so that matching is a comparison of
    strings: refused, never rewritten, when it is not."""
    if "*" in value:
        raise ValueError("wildcards are not supported: list each origin")
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in _DEFAULT_PORTS:
        raise ValueError("an origin is https://host or http://host, with an optional :port")
    if any(c in rest for c in "/?#"):
        raise ValueError("an origin has no path, query or fragment (nor a trailing slash)")
    if "@" in rest:
        raise ValueError("an origin has no user name or password")
    if not value.isascii():
        raise ValueError("write an internationalised domain name in its punycode (xn--) form")
    if value != value.lower():
        raise ValueError(f"write the origin in lower case, as browsers send it: {value.lower()}")
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535")
    host = rest.removesuffix(f":{port}") if port is not None else rest
    if not _HOST.fullmatch(host):
        raise ValueError("an origin is https://host or http://host, with an optional :port")
    if port == _DEFAULT_PORTS[scheme]:
        raise ValueError(
            f"browsers leave the default port out of an origin: write {scheme}://{host}"
        )
    return value


def _distinct(origins: list[str]) -> list[str]:
    seen = set()
    for origin in origins:
        if origin in seen:
            raise ValueError(f"{origin} is listed twice")
        seen.add(origin)
    return origins


Origin = Annotated[str, StringConstraints(max_length=300), AfterValidator(_exact_origin)]
AllowedOrigins = Annotated[list[Origin], Field(max_length=100), AfterValidator(_distinct)]


MAX_THEMES = 50
MAX_KEYWORDS = 50


def _keyword(value: str) -> str:
    if not words(value):
        raise ValueError("a keyword needs a letter or a digit")
    return value


def _distinct_keywords(keywords: list[str]) -> list[str]:
    seen: dict[tuple[str, ...], str] = {}
    for keyword in keywords:
        key = tuple(words(keyword))
        if key in seen:
            raise ValueError(
                f"{keyword!r} and {seen[key]!r} are the same words once case and accents "
                "are set aside: list it once"
            )
        seen[key] = keyword
    return keywords


Keyword = Annotated[str, StringConstraints(max_length=100), AfterValidator(_keyword)]
ThemeName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"\S")]
Keywords = Annotated[
    list[Keyword], Field(min_length=1, max_length=MAX_KEYWORDS), AfterValidator(_distinct_keywords)
]
Themes = Annotated[dict[ThemeName, Keywords], Field(max_length=MAX_THEMES)]


class WorkspaceSettings(Strict):
    """The body of PUT /v1/settings, which replaces the settings: an absent field is its default."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "role_weights": {"decision_maker": 4, "influencer": 2},
                    "low_n": 20,
                    "benchmarks": {"technology": {"low": 35, "high": 55}, "manufacturing": None},
                    "role_benchmarks": {"decision_maker": {"low": 20, "high": 45}},
                    "industry_role_benchmarks": {"technology": {"user": {"low": 40, "high": 60}}},
                    "themes": {"pricing": ["price", "expensive", "Preis"], "support": ["support"]},
                }
            ]
        }
    )

    role_weights: RoleWeights = Field(default_factory=RoleWeights)
    job_level_weights: JobLevelWeights = Field(default_factory=JobLevelWeights)
    min_n: int = Field(5, strict=True, ge=1, le=1_000_000, description="below: `insufficient`")
    low_n: int = Field(
        30, strict=True, ge=1, le=1_000_000, description="below: `low`; at least `min_n`"
    )
    default_window_days: int = Field(365, strict=True, ge=1, le=3650)
    default_method: DefaultMethod = "latest_per_stakeholder"
    default_ci_method: CIMethod = CIMethod.ADJUSTED_WALD
    default_confidence: float = Field(0.95, strict=True, ge=0.5, le=0.999)
    benchmarks: Annotated[dict[Industry, BenchmarkRange | None], Field(max_length=200)] = Field(
        default_factory=dict,
        description="industry ranges over the built-in table; null removes a built-in industry",
    )
    role_benchmarks: RoleBenchmarks = Field(
        default_factory=dict,
        description="ranges per respondent role, across industries (none built in): where a "
        "role group stands in /v1/nps, the account report's role breakdown and /v1/drivers",
    )
    industry_role_benchmarks: Annotated[dict[Industry, RoleBenchmarks], Field(max_length=200)] = (
        Field(
            default_factory=dict,
            description="ranges per role within an industry; a role group is read against its "
            "industry's role range, else `role_benchmarks`' range for the role, else the "
            "industry's range in `benchmarks`",
        )
    )
    at_risk: AtRiskRules = Field(default_factory=AtRiskRules)
    company: CompanyName | None = Field(
        default=None,
        description="the company name surveys show for {company}; null: the workspace's name",
    )
    survey_rules: SurveyRules = Field(default_factory=SurveyRules)
    allowed_origins: AllowedOrigins = Field(
        default_factory=list,
        description="web origins (`https://app.example.com`, as browsers send them: lower "
        "case, no path, no default port) whose pages may call /v1/public/* with this "
        "workspace's invitation tokens (CORS, without credentials); empty: none",
    )
    case_rules: CaseRules = Field(
        default_factory=default_case_rules,
        description="which answers open a follow-up case, tried in order, each with its SLA; "
        "empty: none",
    )
    themes: Themes = Field(
        default_factory=dict,
        description="themes GET /v1/themes counts in comments: name -> keywords and phrases "
        f"(at most {MAX_THEMES} themes of 1 to {MAX_KEYWORDS} each), matched as whole words, "
        'case and accents aside (`cafe` matches "Café", `price` not "priceless"); in a '
        "merge patch, a theme set to null is removed",
    )

    @field_validator("low_n")
    @classmethod
    def _thresholds_ordered(cls, low_n: int, info: ValidationInfo) -> int:
        min_n = info.data.get("min_n")
        if min_n is not None and low_n < min_n:
            raise ValueError("low_n must be at least min_n")
        return low_n


class BenchmarkRead(BaseModel):
    low: float
    high: float


class SettingsRead(BaseModel):
    """The settings in effect; `benchmarks` is the built-in table with this workspace's changes."""

    role_weights: RoleWeights
    job_level_weights: JobLevelWeights
    min_n: int
    low_n: int
    default_window_days: int
    default_method: DefaultMethod
    default_ci_method: CIMethod
    default_confidence: float
    benchmarks: dict[str, BenchmarkRead]
    role_benchmarks: dict[Role, BenchmarkRead]
    industry_role_benchmarks: dict[str, dict[Role, BenchmarkRead]]
    at_risk: AtRiskRules
    company: str | None = Field(description="null: surveys show the workspace's name")
    survey_rules: SurveyRules
    allowed_origins: list[str] = Field(
        description="origins whose pages may call the public calls with this workspace's tokens"
    )
    case_rules: list[CaseRule]
    themes: dict[str, list[str]] = Field(description="theme name -> its keywords and phrases")
