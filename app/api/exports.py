"""Exports: every response that passes the list's filters, or every account with its score
and at-risk reasons, as a CSV or NDJSON file streamed page by page."""

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api.auth import ReadAuth
from app.api.deps import utcnow
from app.api.responses import ResponseFiltersDep
from app.api.score_params import AccountCountingDep, Text, WindowDep
from app.api.settings import WorkspaceSettingsDep
from app.bodies import StrictRoute
from app.db import ReadSessionDep, get_read_sessionmaker, get_sessionmaker
from app.presenters.exports import (
    ACCOUNT_COLUMNS,
    FORMULA_STARTS,
    MEDIA_TYPES,
    RESPONSE_COLUMNS,
    Column,
    ExportFormat,
    account_item,
    csv_header,
    csv_row,
    csv_rows,
    ndjson_line,
    response_item,
)
from app.schemas import ResponseRead
from app.schemas.at_risk import AtRiskAccount
from app.schemas.exports import ExportColumn, ExportMetadata
from app.services.at_risk import assess_accounts
from app.services.exports import response_pages
from app.services.responses import ResponseFilters
from app.services.risk_findings import Flagged, Rules
from app.services.selection import Counting, Window

router = APIRouter(prefix="/v1/exports", tags=["exports"], route_class=StrictRoute)

FormatParam = Annotated[
    ExportFormat,
    Query(alias="format", description="csv (RFC 4180, UTF-8) or ndjson (one JSON object a line)"),
]


SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
ReplicaDep = Annotated[async_sessionmaker[AsyncSession] | None, Depends(get_read_sessionmaker)]

FORMULA_GUARD = (
    "a text cell whose first character after any spaces is one of "
    + ", ".join(repr(c) for c in FORMULA_STARTS)
    + ", or that starts with a single quote, is prefixed with one single quote (OWASP CSV "
    "injection); number cells are never altered; NDJSON is not guarded (it is JSON, not a sheet)"
)

EXPORT_HEADERS: dict[str, Any] = {
    "Content-Disposition": {
        "description": 'attachment; filename="{kind}-{generated-at}.{csv|ndjson}"',
        "schema": {"type": "string"},
    },
    "Export-Generated-At": {
        "description": "when the export began (RFC 3339, UTC)",
        "schema": {"type": "string", "format": "date-time"},
    },
    "Export-Filters": {
        "description": "the filters given, as a query string (empty: none)",
        "schema": {"type": "string"},
    },
    "Export-From": {
        "description": "window start, inclusive (absent: unbounded)",
        "schema": {"type": "string", "format": "date-time"},
    },
    "Export-To": {
        "description": "window end, exclusive (absent: unbounded)",
        "schema": {"type": "string", "format": "date-time"},
    },
    "Link": {
        "description": 'the sidecar (GET .../metadata with the same query), rel="describedby"',
        "schema": {"type": "string"},
    },
}


def _export_doc(item: type[Any], description: str, *, method: bool) -> dict[int | str, Any]:
    headers = dict(EXPORT_HEADERS)
    if method:
        headers["Export-Method"] = {
            "description": "how responses were counted into the scores",
            "schema": {"type": "string"},
        }
    return {
        200: {
            "description": description,
            "headers": headers,
            "content": {
                "text/csv": {"schema": {"type": "string", "description": "RFC 4180, UTF-8"}},
                "application/x-ndjson": {
                    "schema": {"$ref": f"#/components/schemas/{item.__name__}"},
                    "description": "one such JSON object per line",
                },
            },
        }
    }


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _columns(columns: Sequence[Column]) -> list[ExportColumn]:
    return [
        ExportColumn(name=c.name, type=c.kind.value, description=c.description) for c in columns
    ]


def _response_echo(filters: ResponseFilters) -> dict[str, str]:
    names = {"submitted_from": "from", "submitted_to": "to"}
    echo = {}
    for name in filters.__slots__:
        value = getattr(filters, name)
        if value is not None:
            text = _stamp(value) if isinstance(value, datetime) else str(value)
            echo[names.get(name, name)] = text.lower() if isinstance(value, bool) else text
    return echo


def _streamed(
    request: Request,
    chunks: AsyncIterator[bytes],
    meta: ExportMetadata,
) -> StreamingResponse:
    stamp = meta.generated_at.strftime("%Y%m%dT%H%M%SZ")
    query = request.url.query
    sidecar = f"{request.url.path}/metadata" + (f"?{query}" if query else "")
    headers = {
        "Content-Disposition": f'attachment; filename="{meta.kind}-{stamp}.{meta.format}"',
        "Export-Generated-At": _stamp(meta.generated_at),
        "Export-Filters": urlencode(meta.filters),
        "Link": f'<{sidecar}>; rel="describedby"',
    }
    if meta.from_ is not None:
        headers["Export-From"] = _stamp(meta.from_)
    if meta.to is not None:
        headers["Export-To"] = _stamp(meta.to)
    if meta.method is not None:
        headers["Export-Method"] = meta.method
    return StreamingResponse(chunks, media_type=meta.media_type, headers=headers)


def _responses_meta(filters: ResponseFilters, fmt: ExportFormat) -> ExportMetadata:
    return ExportMetadata(
        kind="responses",
        format=fmt.value,
        media_type=MEDIA_TYPES[fmt],
        method=None,
        ci_method=None,
        confidence=None,
        from_=filters.submitted_from,
        to=filters.submitted_to,
        filters=_response_echo(filters),
        generated_at=utcnow(),
        columns=_columns(RESPONSE_COLUMNS),
        formula_guard=FORMULA_GUARD,
    )


async def _response_chunks(
    sessionmaker: async_sessionmaker[AsyncSession],
    workspace_id: uuid.UUID,
    filters: ResponseFilters,
    fmt: ExportFormat,
) -> AsyncIterator[bytes]:
    if fmt is ExportFormat.CSV:
        yield csv_header(RESPONSE_COLUMNS)
    async for page in response_pages(sessionmaker, workspace_id, filters):
        items = (response_item(row) for row in page)
        if fmt is ExportFormat.CSV:
            yield csv_rows(RESPONSE_COLUMNS, items)
        else:
            yield b"".join(ndjson_line(item) for item in items)


@router.get(
    "/responses",
    response_class=StreamingResponse,
    responses=_export_doc(ResponseRead, "The responses, in id order, as a file", method=False),
    operation_id="export_responses",
)
async def export_responses(
    request: Request,
    auth: ReadAuth,
    primary: SessionmakerDep,
    replica: ReplicaDep,
    filters: ResponseFiltersDep,
    format_: FormatParam = ExportFormat.CSV,
) -> StreamingResponse:
    """Every response that passes the filters of GET /v1/responses, as CSV or NDJSON."""
    meta = _responses_meta(filters, format_)
    chunks = _response_chunks(replica or primary, auth.workspace_id, filters, format_)
    return _streamed(request, chunks, meta)


@router.get(
    "/responses/metadata",
    response_model=ExportMetadata,
    operation_id="export_responses_metadata",
)
async def export_responses_metadata(
    auth: ReadAuth, filters: ResponseFiltersDep, format_: FormatParam = ExportFormat.CSV
) -> ExportMetadata:
    """The sidecar of GET /v1/exports/responses with the same query: filters and columns."""
    return _responses_meta(filters, format_)


def _accounts_meta(
    counting: Counting, window: Window, filters: dict[str, str], fmt: ExportFormat
) -> ExportMetadata:
    return ExportMetadata(
        kind="accounts",
        format=fmt.value,
        media_type=MEDIA_TYPES[fmt],
        method=counting.method.value,
        ci_method=counting.options.ci_method.value,
        confidence=counting.options.confidence,
        from_=window.start,
        to=window.end,
        filters=filters,
        generated_at=utcnow(),
        columns=_columns(ACCOUNT_COLUMNS),
        formula_guard=FORMULA_GUARD,
    )


async def _account_chunks(
    assessed: Iterable[Flagged], counting: Counting, fmt: ExportFormat
) -> AsyncIterator[bytes]:
    if fmt is ExportFormat.CSV:
        yield csv_header(ACCOUNT_COLUMNS)
    for flagged in assessed:
        item = account_item(flagged, counting)
        yield csv_row(ACCOUNT_COLUMNS, item) if fmt is ExportFormat.CSV else ndjson_line(item)


def _account_filters(segment: str | None, industry: str | None) -> dict[str, str]:
    given = {"segment": segment, "industry": industry}
    return {name: value for name, value in given.items() if value is not None}


@router.get(
    "/accounts",
    response_class=StreamingResponse,
    responses=_export_doc(
        AtRiskAccount,
        "Every account, by id, with its score, benchmark standing and at-risk reasons "
        "(none when it is not at risk)",
        method=True,
    ),
    operation_id="export_accounts",
)
async def export_accounts(
    request: Request,
    session: ReadSessionDep,
    auth: ReadAuth,
    settings: WorkspaceSettingsDep,
    counting: AccountCountingDep,
    requested: WindowDep,
    segment: Text = None,
    industry: Text = None,
    format_: FormatParam = ExportFormat.CSV,
) -> StreamingResponse:
    """Every account with its score under `method`, as GET /v1/accounts/at-risk assesses it."""
    counting.require_per_account()
    window = requested.resolve()
    meta = _accounts_meta(counting, window, _account_filters(segment, industry), format_)
    # Assessed before the first byte, in the request's read (as the at-risk list is): an error
    # is still a problem+json answer, and the rows are written out as they are formatted.
    assessed = await assess_accounts(
        session,
        auth.workspace_id,
        window=window,
        counting=counting,
        rules=Rules.of(settings.at_risk),
        segment=segment,
        industry=industry,
    )
    return _streamed(request, _account_chunks(assessed, counting, format_), meta)


@router.get(
    "/accounts/metadata",
    response_model=ExportMetadata,
    operation_id="export_accounts_metadata",
)
async def export_accounts_metadata(
    # First, so the read's turn is taken before authentication holds a connection (the
    # counting options read the workspace's settings on it).
    session: ReadSessionDep,
    auth: ReadAuth,
    counting: AccountCountingDep,
    requested: WindowDep,
    segment: Text = None,
    industry: Text = None,
    format_: FormatParam = ExportFormat.CSV,
) -> ExportMetadata:
    """The sidecar of GET /v1/exports/accounts with the same query: method, window, columns."""
    counting.require_per_account()
    return _accounts_meta(
        counting, requested.resolve(), _account_filters(segment, industry), format_
    )
