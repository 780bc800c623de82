"""Request and response bodies of the v1 API."""

import math
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)

from app.models import Channel, JobLevel, Role, Scope
from app.scoring import SCORE_MAX, SCORE_MIN, Category, CIMethod, Precision

ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"


def _not_only_dots(value: str) -> str:
    if value in (".", ".."):  # a URL path cannot name such an id afterwards
        raise ValueError("an id cannot be '.' or '..'")
    return value


ClientId = Annotated[str, StringConstraints(pattern=ID_PATTERN), AfterValidator(_not_only_dots)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
SurveyKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{1,100}$")]
# CRM custom fields: any JSON, within the limits of _unstorable below.
Attributes = Annotated[dict[str, Any], Field(max_length=100)]
# The experience behind a score, e.g. {"support": 4, "product": 5}: flat, scalar values.
DriverValue = StrictInt | StrictFloat | StrictBool | Annotated[StrictStr, Field(max_length=1000)]
Drivers = Annotated[
    dict[Annotated[str, Field(max_length=100)], DriverValue | None], Field(max_length=100)
]

T = TypeVar("T")

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})")
YEARS = (1900, 9000)


def _rfc3339(value: object) -> object:
    """Only RFC 3339 text with an offset: no Unix numbers, no naive local times."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("expected an RFC 3339 date-time with an offset, e.g. 2026-11-23T09:30:00Z")
    return value


def _in_utc(value: datetime) -> datetime:
    """Stored and compared as UTC; far-off years would overflow the arithmetic on windows."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not YEARS[0] <= utc.year <= YEARS[1]:
        raise ValueError(f"the instant must fall in the years {YEARS[0]} to {YEARS[1]}")
    return utc


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_utc)]

MAX_DEPTH = 8


def _unstorable(value: object, path: str, depth: int = 0) -> str | None:
    """Why parsed JSON cannot be stored faithfully, and where; None when it can.

    PostgreSQL text and jsonb hold no NUL character and no lone surrogate, JSON has no NaN or
    Infinity (Python's parser accepts them), and deep nesting is refused before it can exhaust
    a serializer.
    """
    where = path or "body"
    if isinstance(value, str):
        if "\x00" in value:
            return f"text must not contain NUL characters (\\u0000): {where}"
        try:
            value.encode()
        except UnicodeEncodeError:
            return f"text must be valid Unicode (no lone surrogates): {where}"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"numbers must be finite: {where}"
    if isinstance(value, dict):
        items: Iterable[tuple[object, object]] = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    if depth > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels: {where}"
    for key, item in items:
        inner = f"{path}.{key}" if path else str(key)
        found = _unstorable(key, path, depth) or _unstorable(item, inner, depth + 1)
        if found is not None:
            return found
    return None


class Strict(BaseModel):
    """Unknown fields are refused so a typo is an error, not silently dropped data."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: object) -> object:
        problem = _unstorable(data, "")
        if problem is not None:
            raise ValueError(problem)
        return data


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null at the end"
    )


# Accounts


class AccountFields(Strict):
    name: Name | None = None
    industry: ShortText | None = None
    segment: ShortText | None = None
    annual_revenue: Annotated[Decimal, Field(ge=0, max_digits=20, decimal_places=2)] | None = None
    currency: Currency | None = Field(default=None, description="ISO 4217 code of annual_revenue")
    attributes: Attributes = Field(default_factory=dict)


class AccountUpsert(AccountFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Acme Corp",
                    "industry": "technology",
                    "segment": "enterprise",
                    "annual_revenue": "1200000.00",
                    "currency": "EUR",
                }
            ]
        }
    )


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str | None
    industry: str | None
    segment: str | None
    annual_revenue: Decimal | None
    currency: str | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


# Stakeholders


class StakeholderFields(Strict):
    account_id: ClientId
    name: Name | None = None
    email: Email | None = None
    role: Role = Role.OTHER
    job_level: JobLevel = JobLevel.OTHER
    department: ShortText | None = None
    attributes: Attributes = Field(default_factory=dict)
    account: AccountFields | None = Field(
        default=None,
        description="creates the account in the same call when it does not exist yet "
        "(an existing account is left unchanged)",
    )


class StakeholderUpsert(StakeholderFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acme",
                    "name": "Dana Smith",
                    "email": "dana@acme.example",
                    "role": "decision_maker",
                    "job_level": "executive",
                    "department": "Engineering",
                }
            ]
        }
    )


class StakeholderInline(StakeholderFields):
    id: ClientId


class StakeholderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    account_id: str
    name: str | None
    email: str | None
    role: Role
    job_level: JobLevel
    department: str | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


# Responses


class ResponseCreate(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "stakeholder_id": "dana@acme.example",
                    "score": 9,
                    "comment": "Support is quick",
                    "survey": "relationship-2026-q4",
                    "attributes": {"support": 5, "product": 4},
                    "external_id": "crm-survey-123",
                }
            ]
        }
    )

    stakeholder_id: ClientId | None = None
    stakeholder: StakeholderInline | None = Field(
        default=None,
        description="registers a new stakeholder in the same call; for a known one, "
        "updates only the fields given here",
    )
    score: Annotated[StrictInt, Field(ge=SCORE_MIN, le=SCORE_MAX)] = Field(
        description="an integer 0-10; booleans, decimals and strings are refused"
    )
    comment: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    submitted_at: Timestamp | None = Field(
        default=None, description="RFC 3339 with offset; default now; at most 5 minutes ahead"
    )
    survey: SurveyKey | None = None
    channel: Channel = Channel.API
    attributes: Drivers = Field(
        default_factory=dict,
        description='driver ratings behind the score, e.g. {"support": 4}: flat scalar values',
    )
    external_id: ClientId | None = Field(
        default=None, description="the caller's id; a second response with it is never stored"
    )

    @model_validator(mode="after")
    def _one_stakeholder(self) -> "ResponseCreate":
        if (self.stakeholder_id is None) == (self.stakeholder is None):
            raise ValueError("give exactly one of stakeholder_id or stakeholder")
        return self

    @property
    def stakeholder_key(self) -> str:
        if self.stakeholder is not None:
            return self.stakeholder.id
        assert self.stakeholder_id is not None
        return self.stakeholder_id


class ResponseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    external_id: str | None
    stakeholder_id: str
    account_id: str
    role: Role
    job_level: JobLevel
    department: str | None
    score: int
    category: Category
    comment: str | None
    submitted_at: datetime
    survey: str | None
    channel: Channel
    attributes: dict[str, Any]
    excluded: bool
    excluded_reason: str | None
    created_at: datetime
    updated_at: datetime


class ResponsePatch(Strict):
    excluded: StrictBool
    reason: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
        | None
    ) = None

    @model_validator(mode="after")
    def _reason_when_excluding(self) -> "ResponsePatch":
        if self.excluded and self.reason is None:
            raise ValueError("a reason is required to exclude a response")
        return self


class BatchRequest(BaseModel):
    responses: list[Any] = Field(
        description="up to 1,000 response objects, each validated on its own"
    )


class BatchItemResult(BaseModel):
    index: int
    status: int = Field(description="201 stored, 200 already stored (duplicate), 4xx refused")
    id: uuid.UUID | None = None
    duplicate: bool = False
    problem: dict[str, Any] | None = None


class BatchResult(BaseModel):
    stored: int
    duplicates: int
    failed: int
    results: list[BatchItemResult]


# API keys


class ApiKeyCreate(Strict):
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)]
    label: Label | None = None


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    prefix: str
    scopes: list[Scope]
    label: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="the secret; shown only in this answer")


# Scores


class IntervalRead(BaseModel):
    low: float
    high: float
    level: float
    method: CIMethod


class UnweightedRead(BaseModel):
    nps: float | None
    ci: IntervalRead | None


class ScoreRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "nps": 30.0,
                    "n": 10,
                    "promoters": 5,
                    "passives": 3,
                    "detractors": 2,
                    "promoter_pct": 50.0,
                    "passive_pct": 30.0,
                    "detractor_pct": 20.0,
                    "ci": {"low": -19.05, "high": 65.2, "level": 0.95, "method": "adjusted_wald"},
                    "precision": "low",
                    "n_effective": 10.0,
                    "unweighted": None,
                }
            ]
        }
    )

    nps: float | None
    n: int
    promoters: int
    passives: int
    detractors: int
    promoter_pct: float | None
    passive_pct: float | None
    detractor_pct: float | None
    ci: IntervalRead | None
    precision: Precision
    n_effective: float
    unweighted: UnweightedRead | None = None


class GroupRead(BaseModel):
    key: dict[str, str | None]
    score: ScoreRead


class NpsReport(BaseModel):
    method: str
    from_: datetime = Field(alias="from")
    to: datetime
    filters: dict[str, str]
    score: ScoreRead
    groups: list[GroupRead] | None = None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class AccountNpsReport(BaseModel):
    account_id: str
    method: str
    from_: datetime = Field(alias="from")
    to: datetime
    score: ScoreRead
    breakdowns: dict[str, list[GroupRead]] = Field(
        description="the same score by role, job_level and department"
    )

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class Health(BaseModel):
    status: str


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details, served as application/problem+json."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


PROBLEM_REF = "#/components/schemas/Problem"


def problem_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: problem_doc("The body could not be read (not UTF-8 text)"),
    401: problem_doc("Missing, unknown or revoked API key"),
    403: problem_doc("The API key lacks the scope this call needs"),
    404: problem_doc("Not found in the caller's workspace"),
    413: problem_doc("Request body too large"),
    422: problem_doc("Invalid input: `errors` lists each field problem"),
    503: problem_doc("The database is unavailable; retry after `Retry-After` seconds"),
}
