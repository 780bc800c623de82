"""Reading an uploaded file: its bytes as they come (chunk by chunk, never whole), decoded as
UTF-8 (a byte order mark skipped), split into records (CSV, RFC 4180, with a comma or a
semicolon, sniffed from the header line; or NDJSON, one JSON object a line), each with its row
number and its raw text, and its columns named with the service's field names (a `mapping`, a
preset, case-insensitive headers).

A CSV cell is text, so the only reading of it is the one the field's JSON type asks for and no
other: an integer field takes a cell that is exactly an integer (`9`, not `9.5`, ` 9`, `09` or
`yes`, which stay text and are refused as the API refuses them), `true`/`false` for a boolean,
JSON text for `attributes`; an empty cell is a field not given. Text cells lose the single quote
that the exports' formula guard (app.presenters.exports.guard_text) put in front of them, and
only that one. NDJSON values are the API's JSON values, untouched.
"""

import codecs
import csv
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from app.models import ImportFormat, ImportKind
from app.presenters.exports import FORMULA_STARTS, GUARD

ACCOUNT_FIELDS = ("name", "industry", "segment", "annual_revenue", "currency")
PROFILE_FIELDS = ("name", "email", "role", "job_level", "department")

# The fields of each kind (dotted: `account.name` is the account's name; `attributes.<key>` is
# one attribute, any key).
FIELDS: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.ACCOUNTS: ("id", *ACCOUNT_FIELDS, "attributes"),
    ImportKind.STAKEHOLDERS: (
        "id",
        "account_id",
        *PROFILE_FIELDS,
        "attributes",
        *(f"account.{f}" for f in ACCOUNT_FIELDS),
    ),
    ImportKind.RESPONSES: (
        "external_id",
        "stakeholder_id",
        "score",
        "comment",
        "submitted_at",
        "survey",
        "channel",
        "attributes",
        "excluded",
        "excluded_reason",
        # The person (and their account) carried by a responses file: registered as
        # POST /v1/responses registers an inline `stakeholder`.
        "account_id",
        "role",
        "job_level",
        "department",
        "stakeholder.name",
        "stakeholder.email",
        *(f"account.{f}" for f in ACCOUNT_FIELDS),
    ),
}
# Columns of GET /v1/exports/responses that the service assigns or derives: read and dropped.
DERIVED = {ImportKind.RESPONSES: frozenset({"id", "category", "created_at", "updated_at"})}
INTEGER_FIELDS = frozenset({"score"})
BOOLEAN_FIELDS = frozenset({"excluded"})
JSON_FIELDS = frozenset({"attributes"})
ATTRIBUTE = "attributes."

_INTEGER = re.compile(r"0|-?[1-9][0-9]*")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
READ_SIZE = 1 << 20


class FileRefused(Exception):
    """The file as a whole cannot be read (its encoding, its header, its mapping): the import
    fails with this message and stores nothing."""


@dataclass(frozen=True, slots=True)
class Record:
    number: int  # the data row (CSV, the header not counted) or the line (NDJSON), from 1
    raw: str  # as sent (a CSV record re-joined, an NDJSON line)
    values: dict[str, Any]  # the service's field -> the value given
    problem: tuple[str | None, str] | None = None  # (field, reason) when unreadable


def unguard(text: str) -> str:
    """The text the exports' formula guard was given: one leading quote removed when the guard
    put it there (before a quote, or before a formula's first character after any spaces)."""
    if text.startswith(GUARD):
        rest = text[1:]
        if rest.startswith(GUARD) or rest.lstrip(" ").startswith(FORMULA_STARTS):
            return rest
    return text


def normalise_mapping(kind: ImportKind, mapping: Mapping[str, str | None]) -> dict[str, str | None]:
    """The mapping with lower-cased, trimmed column names; every target a field of `kind` (or
    null: the column is ignored)."""
    known = FIELDS[kind]
    out: dict[str, str | None] = {}
    for column, target in mapping.items():
        if target is not None and target not in known and not target.startswith(ATTRIBUTE):
            raise FileRefused(
                f"mapping: {column!r} names {target!r}, which is not a field of {kind.value} "
                f"(fields: {', '.join(known)}, or attributes.<key>)"
            )
        out[column.strip().lower()] = target
    return out


def resolve_columns(
    kind: ImportKind, headers: list[str], mapping: Mapping[str, str | None], *, lenient: bool
) -> list[str | None]:
    """The field each column fills (None: ignored). A column that is neither mapped nor a field
    is refused (a typo is an error, never dropped data) unless `lenient` (a preset's export
    carries columns of its own)."""
    known = set(FIELDS[kind])
    derived = DERIVED.get(kind, frozenset())
    targets: list[str | None] = []
    unknown: list[str] = []
    for header in headers:
        name = header.strip().lower()
        if name in mapping:
            targets.append(mapping[name])
        elif name in known or name.startswith(ATTRIBUTE):
            targets.append(name)
        elif name in derived or lenient:
            targets.append(None)
        else:
            unknown.append(header)
            targets.append(None)
    if unknown:
        raise FileRefused(
            f"unknown columns {unknown!r} for {kind.value}: map them with `mapping` "
            f"(to a field, or to null to ignore them); fields: {', '.join(sorted(known))}"
        )
    chosen = [t for t in targets if t is not None]
    twice = sorted({t for t in chosen if chosen.count(t) > 1})
    if twice:
        raise FileRefused(f"more than one column fills {twice!r}")
    return targets


async def decoded(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The file's text, piece by piece; a byte order mark at the start skipped."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    first = True
    offset = 0
    try:
        async for chunk in chunks:
            text = decoder.decode(chunk)
            offset += len(chunk)
            if first and text:
                text = text.removeprefix("\ufeff")
                first = False
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise FileRefused(f"the file is not UTF-8 (near byte {offset + exc.start})") from None
    if tail:
        yield tail


async def lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The text line by line, each with its line end (only `\\n` ends a line: CSV's CRLF keeps
    its CR for the csv module, and other Unicode breaks stay inside their line)."""
    pending = ""
    async for text in decoded(chunks):
        pending += text
        start = 0
        while (end := pending.find("\n", start)) >= 0:
            yield pending[start : end + 1]
            start = end + 1
        pending = pending[start:]
    if pending:
        yield pending


def sniff_delimiter(header: str) -> str:
    """Comma or semicolon: whichever the header line holds more of outside quotes."""
    outside = re.sub(r'"[^"]*"', "", header)
    return ";" if outside.count(";") > outside.count(",") else ","


class CsvRecords:
    """CSV records from lines, each with the raw text it was read from.

    Lines are given in groups that end outside quotes (an even count of `"` so far: RFC 4180
    escapes a quote by doubling it), so the csv module never meets the end of its input inside
    a record and can be fed again afterwards."""

    def __init__(self, delimiter: str) -> None:
        self.delimiter = delimiter
        self._pending: deque[str] = deque()
        self._group: list[str] = []
        self._odd = False
        self._consumed: list[str] = []
        self._reader = csv.reader(self, delimiter=delimiter, strict=True)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if not self._pending:
            raise StopIteration
        line = self._pending.popleft()
        self._consumed.append(line)
        return line

    def push(self, line: str) -> None:
        self._group.append(line)
        if line.count('"') % 2:
            self._odd = not self._odd
        if not self._odd:
            self._pending.extend(self._group)
            self._group = []

    def finish(self) -> None:
        """The file ended: whatever is left (an unclosed quote) is read as it is."""
        self._pending.extend(self._group)
        self._group = []

    def records(self) -> Iterator[tuple[list[str] | None, str, str | None]]:
        """Each complete record given so far: its cells (None when malformed), its raw text
        and what is wrong with it."""
        while True:
            self._consumed = []
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield None, "".join(self._consumed).rstrip("\r\n"), f"malformed CSV: {exc}"
                continue
            yield cells, "".join(self._consumed).rstrip("\r\n"), None


def csv_value(field: str, cell: str) -> tuple[Any, str | None]:
    """A cell as the field's JSON value (see the module's doc), with a problem when it has none."""
    if field in INTEGER_FIELDS:
        return (int(cell), None) if _INTEGER.fullmatch(cell) else (cell, None)
    if field in BOOLEAN_FIELDS:
        return {"true": True, "false": False}.get(cell, cell), None
    if field in JSON_FIELDS:
        try:
            return json.loads(unguard(cell)), None
        except (ValueError, RecursionError):
            return None, "not JSON text"
    if field.startswith(ATTRIBUTE):
        # One attribute a column: a number when the cell is one, else its text.
        if _INTEGER.fullmatch(cell):
            return int(cell), None
        if _NUMBER.fullmatch(cell):
            return float(cell), None
        return unguard(cell), None
    return unguard(cell), None


def csv_record(
    number: int, raw: str, cells: list[str], targets: list[str | None], *, as_text: bool = False
) -> Record:
    """A CSV record's values by field (`as_text`: cells as they are, for a preset to read)."""
    values: dict[str, Any] = {}
    if len(cells) != len(targets):
        return Record(
            number, raw, {}, (None, f"{len(cells)} cells where the header has {len(targets)}")
        )
    for field, cell in zip(targets, cells, strict=True):
        if field is None or cell == "":
            continue
        if as_text:
            values[field] = cell
            continue
        value, problem = csv_value(field, cell)
        if problem is not None:
            return Record(number, raw, values, (field, problem))
        values[field] = value
    return Record(number, raw, values)


def raw_ndjson_record(number: int, line: str) -> Record | None:
    """An NDJSON line's object as it is (its keys lower-cased), for a preset to read."""
    raw = line.rstrip("\r\n")
    if not raw.strip():
        return None
    try:
        item = json.loads(raw)
    except (ValueError, RecursionError):
        return Record(number, raw, {}, (None, "not a JSON object"))
    if not isinstance(item, dict):
        return Record(number, raw, {}, (None, "not a JSON object"))
    return Record(number, raw, {str(k).strip().lower(): v for k, v in item.items()})


def text_record(record: Record, texts: Mapping[str, str]) -> Record:
    """A record of fields given as CSV text, each read as its field's JSON value."""
    values: dict[str, Any] = {}
    for name, cell in texts.items():
        if cell == "":
            continue
        value, problem = csv_value(name, cell)
        if problem is not None:
            return Record(record.number, record.raw, values, (name, problem))
        values[name] = value
    return Record(record.number, record.raw, values)


def ndjson_record(
    kind: ImportKind, number: int, line: str, mapping: Mapping[str, str | None], *, lenient: bool
) -> Record | None:
    raw = line.rstrip("\r\n")
    if not raw.strip():
        return None
    try:
        item = json.loads(raw)
    except (ValueError, RecursionError):
        return Record(number, raw, {}, (None, "not a JSON object"))
    if not isinstance(item, dict):
        return Record(number, raw, {}, (None, "not a JSON object"))
    known = set(FIELDS[kind])
    derived = DERIVED.get(kind, frozenset())
    values: dict[str, Any] = {}
    for key, value in item.items():
        name = key.strip().lower()
        target = mapping.get(name, name)
        if target is None or (target not in known and not target.startswith(ATTRIBUTE)):
            if target is None or target in derived or lenient:
                continue
            return Record(number, raw, values, (key, "not a field of " + kind.value))
        values[target] = value
    return Record(number, raw, values)


def format_of(content_type: str | None, file_name: str | None) -> ImportFormat | None:
    """The format a Content-Type or a file name says, if any."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media in ("text/csv", "application/csv"):
        return ImportFormat.CSV
    if media in ("application/x-ndjson", "application/ndjson", "application/jsonl"):
        return ImportFormat.NDJSON
    name = (file_name or "").lower()
    if name.endswith(".csv"):
        return ImportFormat.CSV
    if name.endswith((".ndjson", ".jsonl")):
        return ImportFormat.NDJSON
    return None
