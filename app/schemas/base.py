"""Shared field types, the strict request base, pages and problem details."""

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    TypeAdapter,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

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
SURVEY_PATTERN = r"^[A-Za-z0-9._:/-]{1,100}$"
SurveyKey = Annotated[str, StringConstraints(pattern=SURVEY_PATTERN)]
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


@dataclass(frozen=True, slots=True)
class DocumentedAs:
    """`Annotated[list[Any], DocumentedAs(list[Item])]`: parsed as given (a batch validates its
    items one by one, so one bad item fails alone) but documented in OpenAPI as `list[Item]`,
    with Item among the components."""

    documented: Any

    def __get_pydantic_json_schema__(
        self, _: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(TypeAdapter(self.documented).core_schema)


IdT = TypeVar("IdT")


class ItemResult(BaseModel, Generic[IdT]):
    """One item of a batch answer: its index in the request, its status, and the id it
    concerns or the problem that refused it."""

    model_config = ConfigDict(from_attributes=True)

    index: int
    status: int
    id: IdT | None = None
    problem: dict[str, Any] | None = None


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
