"""Shared field types, the strict request base, pages and problem details."""

import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
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
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    TypeAdapter,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"


def not_only_dots(value: str) -> str:
    if value in (".", ".."):  # a URL path cannot name such an id afterwards
        raise ValueError("an id cannot be '.' or '..'")
    return value


ClientId = Annotated[str, StringConstraints(pattern=ID_PATTERN), AfterValidator(not_only_dots)]

# Account ids that a path of its own shadows: GET /v1/accounts/at-risk is the at-risk list, so an
# account with that id could be written but never read back.
RESERVED_ACCOUNT_IDS = frozenset({"at-risk"})


def _not_reserved_account(value: str) -> str:
    if value in RESERVED_ACCOUNT_IDS:
        raise ValueError(f"{value!r} is reserved: /v1/accounts/{value} is another endpoint")
    return value


AccountKey = Annotated[ClientId, AfterValidator(_not_reserved_account)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
# A survey id (PUT /v1/surveys/{id}, an invitation's survey): the id alphabet, at most 100
# characters, so every definable id fits a response's `survey`.
SURVEY_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,100}$"
SurveyId = Annotated[
    str, StringConstraints(pattern=SURVEY_ID_PATTERN), AfterValidator(not_only_dots)
]
# A response's `survey`: every survey id, and (as ever) `/`, which a survey id cannot hold (it
# would not fit a path), so such a survey works with the defaults only.
SURVEY_PATTERN = r"^[A-Za-z0-9._:@/-]{1,100}$"
SurveyKey = Annotated[str, StringConstraints(pattern=SURVEY_PATTERN)]
# `attributes` (custom fields, driver ratings) and their bounds: app/schemas/attributes.py.

T = TypeVar("T")

# Money: one wire type everywhere, a decimal string with at most two decimals (always two in
# answers), so no client ever reads 1200000.1 as 1200000.0999... Amounts are non-negative (annual
# revenue and the sums of it are the only money so far).
MONEY_PATTERN = r"^[0-9]+(\.[0-9]{1,2})?$"
MONEY_INTEGER_DIGITS = 18  # the columns are NUMERIC(20, 2)
_MONEY = re.compile(MONEY_PATTERN)
_CENT = Decimal("0.01")


def _money_error(message: str) -> PydanticCustomError:
    return PydanticCustomError("money", message)


def _parse_money(value: object) -> Decimal:
    """A decimal string; a JSON number too, the type earlier clients sent (deprecated)."""
    if isinstance(value, Decimal):  # the service's own value (a column, a sum): trusted
        return value
    if isinstance(value, str):
        if not _MONEY.fullmatch(value):
            raise _money_error(
                'expected a non-negative decimal string with at most 2 decimals, e.g. "1200000.00"'
            )
        amount = Decimal(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise _money_error("numbers must be finite")
        amount = abs(Decimal(repr(value)))  # the number as written, not its binary expansion
        if value < 0:
            raise _money_error("expected a non-negative amount")
    else:
        raise _money_error('expected a decimal string, e.g. "1200000.00"')
    if amount.adjusted() >= MONEY_INTEGER_DIGITS:
        raise _money_error(f"at most {MONEY_INTEGER_DIGITS} digits before the decimal point")
    if amount != amount.quantize(_CENT):
        raise _money_error("at most 2 decimals")
    return amount


def _money_text(amount: Decimal) -> str:
    return format(amount.quantize(_CENT), "f")


_MONEY_DOC = (
    "An amount of money as a decimal string. Answers always carry two decimals "
    '("1200000.00"); requests may give up to two. A JSON number is still accepted in '
    "requests for compatibility with earlier clients (deprecated)."
)


class _MoneyType:
    """The `Money` component: parsed as above, always written as a string with two decimals."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # One schema for both directions, so the document has one `Money` component.
        text = core_schema.str_schema(
            pattern=MONEY_PATTERN,
            metadata={
                "pydantic_js_updates": {"description": _MONEY_DOC, "examples": ["1200000.00"]}
            },
        )
        return core_schema.no_info_plain_validator_function(
            _parse_money,
            ref="Money",
            json_schema_input_schema=text,
            serialization=core_schema.plain_serializer_function_ser_schema(
                _money_text, return_schema=text
            ),
        )


Money = Annotated[Decimal, _MoneyType]

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


def refuse_null(value: object) -> object:
    """A patch field's before-validator: it runs only for fields sent, so an omitted field keeps
    its value and a null one is refused."""
    if value is None:
        raise ValueError("cannot be null")
    return value


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


class Health(BaseModel):
    status: str


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str


def _absent(value: object) -> bool:
    return value is None


class Problem(BaseModel):
    """RFC 9457 problem details, served as application/problem+json (and inside batch results).
    A problem type may add members of its own (RFC 9457 extensions); they are kept."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="a stable slug under /problems/, e.g. /problems/not-found")
    title: str
    status: int = Field(description="the HTTP status this problem has (or would have) alone")
    detail: str
    # Absent rather than null when there is nothing to say, as the problem+json answers do.
    errors: list[FieldProblem] | None = Field(
        default=None,
        exclude_if=_absent,
        description="one entry per field problem, for validation errors",
    )
    response_id: uuid.UUID | None = Field(
        default=None,
        exclude_if=_absent,
        description="/problems/external-id-conflict: the stored response with that "
        "external_id; /problems/already-answered: the response the invitation recorded",
    )
    answered_at: datetime | None = Field(
        default=None,
        exclude_if=_absent,
        description="/problems/already-answered: when the invitation was answered",
    )
    editable_until: datetime | None = Field(
        default=None,
        exclude_if=_absent,
        description="/problems/edit-window-closed: until when the answer could be edited",
    )
    violated_policies: list[str] | None = Field(
        default=None,
        alias="violated-policies",
        exclude_if=_absent,
        description="/problems/rate-limited: the quotas exceeded (`ip`, `token`), as named in "
        "the RateLimit header fields",
    )


IdT = TypeVar("IdT")


class ItemResult(BaseModel, Generic[IdT]):
    """One item of a batch answer: its index in the request, its status, and the id it
    concerns or the problem that refused it."""

    model_config = ConfigDict(from_attributes=True)

    index: int = Field(description="the item's position in the request, from 0")
    status: int = Field(description="the item's own HTTP status; 4xx: refused, see `problem`")
    id: IdT | None = None
    problem: Problem | None = Field(
        default=None, description="why the item was refused; null when it was not"
    )


PROBLEM_REF = "#/components/schemas/Problem"


RETRY_AFTER_HEADER: dict[str, Any] = {
    "description": "seconds to wait before retrying; set when a retry can succeed (a request "
    "still in progress, a concurrent change, the database unavailable)",
    "schema": {"type": "integer", "minimum": 0},
}


def problem_doc(
    description: str, *, retry_after: bool = False, headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}},
    }
    declared = {**({"Retry-After": RETRY_AFTER_HEADER} if retry_after else {}), **(headers or {})}
    if declared:
        doc["headers"] = declared
    return doc


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: problem_doc("The body could not be read (not UTF-8 text)"),
    401: problem_doc("Missing, unknown or revoked API key"),
    403: problem_doc("The API key lacks the scope this call needs"),
    404: problem_doc("Not found in the caller's workspace"),
    405: problem_doc("The path does not have this method: `Allow` lists those it has"),
    413: problem_doc("Request body too large"),
    422: problem_doc("Invalid input: `errors` lists each field problem"),
    503: problem_doc(
        "The database is unavailable or too slow (/problems/service-unavailable), or the "
        "service is at capacity (/problems/busy); retry after `Retry-After` seconds",
        retry_after=True,
    ),
}
