"""Export files: CSV (RFC 4180, UTF-8) and NDJSON lines of the API's own JSON objects, with the
formula guard that keeps a spreadsheet from running what a respondent typed.

CSV has no place for metadata that a plain reader skips, so what an export was made of (kind,
method, window, filters, generated-at) travels in HTTP headers and in the sidecar document of
GET /v1/exports/{kind}/metadata (app.schemas.exports.ExportMetadata); the file itself is a
header row and data rows that Python's csv module and every spreadsheet read as they are.
"""

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.presenters.at_risk import flagged_read
from app.schemas import ResponseRead
from app.schemas.at_risk import AtRiskAccount
from app.services.risk_findings import Flagged
from app.services.selection import Counting


class ExportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"


MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.NDJSON: "application/x-ndjson",
}

# OWASP "CSV Injection": a cell a spreadsheet would read as a formula starts, after any spaces,
# with one of these.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
GUARD = "'"


# The first characters that make guard_text look closer; any other first character is safe.
_SUSPECT_FIRST = frozenset((*FORMULA_STARTS, " ", GUARD))


def guard_text(text: str) -> str:
    """`text` prefixed with a single quote when a spreadsheet could read it as a formula.

    A text already starting with the quote is prefixed too, so the guard can be undone without
    loss: an import removes exactly one leading quote from every text cell that has one."""
    if not text or text[0] not in _SUSPECT_FIRST:
        return text
    if text.startswith(GUARD) or text.lstrip(" ").startswith(FORMULA_STARTS):
        return GUARD + text
    return text


class Kind(StrEnum):
    TEXT = "text"  # guarded
    NUMBER = "number"  # written as the number it is, never altered
    BOOLEAN = "boolean"  # true / false
    JSON = "json"  # an object or a list, as compact JSON text (guarded like any text)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    value: Callable[[dict[str, Any]], Any]
    description: str


Cell = str | int | float


def _number(value: Any) -> Cell:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(value)
    return value  # Money arrives as its decimal string: still a number, never guarded


def _boolean(value: Any) -> Cell:
    return "" if value is None else ("true" if value else "false")


def _json(value: Any) -> Cell:
    if value is None:
        return ""
    return guard_text(json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True))


def _text(value: Any) -> Cell:
    return "" if value is None else guard_text(str(value))


_WRITERS: dict[Kind, Callable[[Any], Cell]] = {
    Kind.NUMBER: _number,
    Kind.BOOLEAN: _boolean,
    Kind.JSON: _json,
    Kind.TEXT: _text,
}


def csv_lines(rows: Iterable[Sequence[Cell]]) -> bytes:
    buffer = io.StringIO()
    # RFC 4180: CRLF line ends, quoting only where a cell needs it.
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def csv_line(values: Sequence[Cell]) -> bytes:
    return csv_lines([values])


def csv_header(columns: Sequence[Column]) -> bytes:
    return csv_line([c.name for c in columns])


def csv_row(columns: Sequence[Column], item: dict[str, Any]) -> bytes:
    return csv_rows(columns, [item])


def csv_rows(columns: Sequence[Column], items: Iterable[dict[str, Any]]) -> bytes:
    """The CSV lines of `items`, one writer for all of them."""
    cells = [(c.value, _WRITERS[c.kind]) for c in columns]
    return csv_lines([write(value(item)) for value, write in cells] for item in items)


def ndjson_line(item: dict[str, Any]) -> bytes:
    return (json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _field(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda item: item[name]


def _path(*names: str) -> Callable[[dict[str, Any]], Any]:
    def read(item: dict[str, Any]) -> Any:
        value: Any = item
        for name in names:
            if value is None:
                return None
            value = value[name]
        return value

    return read


def response_item(row: Any) -> dict[str, Any]:
    """A response as GET /v1/responses/{id} answers it (JSON values)."""
    return ResponseRead.model_validate(row).model_dump(mode="json")


_RESPONSE_KINDS = {"score": Kind.NUMBER, "excluded": Kind.BOOLEAN, "attributes": Kind.JSON}

# The fields of ResponseRead, in its order, under its names: what an import reads back.
RESPONSE_COLUMNS = tuple(
    Column(
        name,
        _RESPONSE_KINDS.get(name, Kind.TEXT),
        _field(name),
        field.description or f"the response's `{name}`",
    )
    for name, field in ResponseRead.model_fields.items()
)


def account_item(flagged: Flagged, counting: Counting) -> dict[str, Any]:
    """An account as GET /v1/accounts/at-risk shows one (its score, benchmark standing, reasons
    and open cases), whether or not it is at risk: `reasons` is then empty."""
    read: AtRiskAccount = flagged_read(flagged, counting)
    return read.model_dump(mode="json")


ACCOUNT_COLUMNS = (
    Column("account_id", Kind.TEXT, _field("account_id"), "the client's own account id"),
    Column("name", Kind.TEXT, _field("name"), "the account's name"),
    Column("segment", Kind.TEXT, _field("segment"), "the account's segment"),
    Column("industry", Kind.TEXT, _field("industry"), "the account's industry"),
    Column("annual_revenue", Kind.NUMBER, _field("annual_revenue"), "decimal, two places"),
    Column("currency", Kind.TEXT, _field("currency"), "ISO 4217 code of annual_revenue"),
    Column("nps", Kind.NUMBER, _path("score", "nps"), "the score under `method`, unrounded"),
    Column("n", Kind.NUMBER, _path("score", "n"), "responses counted"),
    Column("promoters", Kind.NUMBER, _path("score", "promoters"), "promoters counted"),
    Column("passives", Kind.NUMBER, _path("score", "passives"), "passives counted"),
    Column("detractors", Kind.NUMBER, _path("score", "detractors"), "detractors counted"),
    Column("ci_low", Kind.NUMBER, _path("score", "ci", "low"), "interval's lower bound"),
    Column("ci_high", Kind.NUMBER, _path("score", "ci", "high"), "interval's upper bound"),
    Column("ci_level", Kind.NUMBER, _path("score", "ci", "level"), "interval's level"),
    Column("ci_method", Kind.TEXT, _path("score", "ci", "method"), "interval's method"),
    Column("precision", Kind.TEXT, _path("score", "precision"), "insufficient, low or ok"),
    Column("n_effective", Kind.NUMBER, _path("score", "n_effective"), "Kish effective n"),
    Column(
        "unweighted_nps",
        Kind.NUMBER,
        _path("score", "unweighted", "nps"),
        "under a weighted method: the plain NPS",
    ),
    Column("benchmark_low", Kind.NUMBER, _path("benchmark", "low"), "industry range, low"),
    Column("benchmark_high", Kind.NUMBER, _path("benchmark", "high"), "industry range, high"),
    Column(
        "benchmark_position",
        Kind.TEXT,
        _path("benchmark", "position"),
        "below, within, above or unknown against the industry's range",
    ),
    Column(
        "at_risk_reasons",
        Kind.TEXT,
        lambda item: " ".join(r["code"] for r in item["reasons"]),
        "the at-risk reason codes, space-separated (empty: not at risk)",
    ),
    Column(
        "at_risk_details",
        Kind.TEXT,
        lambda item: "; ".join(r["detail"] for r in item["reasons"]),
        "each reason in a sentence, `; `-separated",
    ),
    Column("open_cases", Kind.NUMBER, _path("open_case", "count"), "recovery cases not closed"),
)
