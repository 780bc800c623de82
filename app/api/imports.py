"""Imports: a CSV or NDJSON file of accounts, stakeholders or responses, uploaded and run as a
job by the worker; its progress, its rejected rows, its cancel."""

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi import Response as HttpResponse
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import UploadFile

from app.api.auth import ReadAuth, WriteAuth
from app.api.deps import AppSettingsDep, Cursor, Limit, utcnow
from app.api.exports import ReplicaDep, SessionmakerDep
from app.bodies import StrictRoute
from app.db import LookupSessionDep, ReadSessionDep, SessionDep, in_workspace, session_scope
from app.errors import Unprocessable, UnsupportedMediaType, field_error
from app.models import ImportFormat, ImportKind
from app.pagination import DEFAULT_LIMIT
from app.presenters.exports import csv_line, csv_lines, guard_text
from app.presenters.imports import ERROR_COLUMNS, import_read, row_error_read
from app.schemas import problem_doc
from app.schemas.imports import ImportErrorPage, ImportRead
from app.services import imports
from app.services.import_files import FileRefused, format_of, normalise_mapping
from app.services.import_presets import PRESETS

IMPORTS_PATH = "/v1/imports"
router = APIRouter(prefix="/v1", tags=["imports"], route_class=StrictRoute)

ImportId = Annotated[uuid.UUID, Path(description="the import's id")]

UPLOAD_DOC: dict[str, Any] = {
    "required": True,
    "description": "the file: the raw body (Content-Type text/csv or application/x-ndjson), or "
    "multipart/form-data with the file in the part `file`",
    "content": {
        "text/csv": {"schema": {"type": "string", "description": "RFC 4180, UTF-8"}},
        "application/x-ndjson": {"schema": {"type": "string"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
    },
}


def _mapping(text: str | None) -> dict[str, str | None]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items()
    ):
        raise Unprocessable(
            "mapping must be a JSON object of column names to field names (or null)",
            errors=[field_error(["query", "mapping"], "not a JSON object of strings")],
        )
    return value


def _kind(kind: ImportKind | None, preset: str | None) -> ImportKind:
    if preset is not None:
        wanted = PRESETS[preset].kind
        if kind is not None and kind is not wanted:
            raise Unprocessable(
                f"the preset {preset!r} imports {wanted.value}",
                errors=[field_error(["query", "kind"], f"must be {wanted.value} (or absent)")],
            )
        return wanted
    if kind is None:
        raise Unprocessable(
            "kind is required: accounts, stakeholders or responses",
            errors=[field_error(["query", "kind"], "required")],
        )
    return kind


async def _raw(request: Request) -> AsyncIterator[bytes]:
    async for piece in request.stream():
        if piece:
            yield piece


async def _spooled(upload: UploadFile) -> AsyncIterator[bytes]:
    while piece := await upload.read(imports.CHUNK_BYTES):
        yield piece


@router.post(
    "/imports",
    status_code=202,
    response_model=ImportRead,
    operation_id="create_import",
    openapi_extra={"requestBody": UPLOAD_DOC},
    responses={
        413: problem_doc("The file is over NPS_IMPORT_MAX_BYTES: nothing stored"),
        415: problem_doc("Neither CSV nor NDJSON (say which with `format`)"),
        422: problem_doc("Unknown kind, preset or mapping field, or an empty file"),
    },
)
async def create_import(
    request: Request,
    session: SessionDep,
    auth: WriteAuth,
    settings: AppSettingsDep,
    kind: Annotated[
        ImportKind | None, Query(description="accounts, stakeholders or responses")
    ] = None,
    format_: Annotated[
        ImportFormat | None,
        Query(alias="format", description="csv or ndjson; default: from the Content-Type"),
    ] = None,
    preset: Annotated[
        str | None,
        Query(
            pattern="^(" + "|".join(PRESETS) + ")$",
            description="an export's columns read for you: " + ", ".join(PRESETS),
        ),
    ] = None,
    mapping: Annotated[
        str | None,
        Query(description="JSON object: their column -> our field, null to ignore one"),
    ] = None,
) -> HttpResponse:
    """Upload a file to import; the worker runs it (poll the answer's id)."""
    chosen = _kind(kind, preset)
    given = _mapping(mapping)
    if preset is not None and given:
        raise Unprocessable(
            "give a preset or a mapping, not both",
            errors=[field_error(["query", "mapping"], "not with a preset")],
        )
    try:
        columns = normalise_mapping(chosen, given)
    except FileRefused as exc:
        raise Unprocessable(
            str(exc), errors=[field_error(["query", "mapping"], str(exc))]
        ) from None
    content_type = request.headers.get("content-type", "")
    file_name: str | None = None
    if content_type.lower().startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=0) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Unprocessable(
                    "the multipart body has no file part `file`",
                    errors=[field_error(["body", "file"], "required")],
                )
            file_name = upload.filename
            fmt = format_ or format_of(upload.content_type, file_name)
            if fmt is None:
                raise _unsupported()
            job = await imports.create_import(
                session,
                auth.workspace_id,
                _spooled(upload),
                kind=chosen,
                fmt=fmt,
                preset=preset,
                mapping=columns,
                file_name=(file_name or "")[:300] or None,
                max_bytes=settings.import_max_bytes,
            )
    else:
        fmt = format_ or format_of(content_type, None)
        if fmt is None:
            raise _unsupported()
        job = await imports.create_import(
            session,
            auth.workspace_id,
            _raw(request),
            kind=chosen,
            fmt=fmt,
            preset=preset,
            mapping=columns,
            file_name=None,
            max_bytes=settings.import_max_bytes,
        )
    body = import_read(job, utcnow()).model_dump_json().encode()
    return HttpResponse(
        body,
        status_code=202,
        media_type="application/json",
        headers={"Location": f"{IMPORTS_PATH}/{job.id}"},
    )


def _unsupported() -> UnsupportedMediaType:
    return UnsupportedMediaType(
        "send text/csv or application/x-ndjson, or say which with `format`",
        errors=[field_error(["header", "Content-Type"], "csv or ndjson")],
    )


@router.get("/imports/{import_id}", response_model=ImportRead, operation_id="get_import")
async def get_import(import_id: ImportId, session: LookupSessionDep, auth: ReadAuth) -> ImportRead:
    """An import's status, counts, progress and estimated time left."""
    job = await imports.get_import(session, auth.workspace_id, import_id)
    return import_read(job, utcnow())


@router.delete("/imports/{import_id}", response_model=ImportRead, operation_id="cancel_import")
async def cancel_import(import_id: ImportId, session: SessionDep, auth: WriteAuth) -> ImportRead:
    """Cancel a queued or running import: the chunks merged stay, nothing half-merged does."""
    job = await imports.cancel_import(session, auth.workspace_id, import_id)
    return import_read(job, utcnow())


async def _error_lines(
    sessionmaker: async_sessionmaker[AsyncSession], workspace_id: uuid.UUID, import_id: uuid.UUID
) -> AsyncIterator[bytes]:
    yield csv_line(ERROR_COLUMNS)
    after: str | None = None
    while True:
        async with session_scope(sessionmaker) as session:
            await in_workspace(session, workspace_id)
            rows, after = await imports.error_page(
                session, workspace_id, import_id, limit=ERROR_PAGE, cursor=after
            )
        yield csv_lines(
            [r.row_number, guard_text(r.field or ""), guard_text(r.reason), guard_text(r.raw)]
            for r in rows
        )
        if after is None:
            return


ERROR_PAGE = 1000


class ErrorFormat:
    JSON = "json"
    CSV = "csv"


@router.get(
    "/imports/{import_id}/errors",
    response_model=ImportErrorPage,
    operation_id="list_import_errors",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def list_import_errors(
    import_id: ImportId,
    session: ReadSessionDep,
    auth: ReadAuth,
    primary: SessionmakerDep,
    replica: ReplicaDep,
    format_: Annotated[
        str,
        Query(
            alias="format",
            pattern="^(json|csv)$",
            description="json (pages) or csv (every rejected row in one file)",
        ),
    ] = ErrorFormat.JSON,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Any:
    """The rejected rows: row number, field, reason and the row as it was sent."""
    if format_ == ErrorFormat.JSON:
        rows, following = await imports.error_page(
            session, auth.workspace_id, import_id, limit=limit, cursor=cursor
        )
        return ImportErrorPage(data=[row_error_read(r) for r in rows], next_cursor=following)
    # Found (or a 404) before the first byte; the file is then read a page at a time, each
    # page its own short read, so a file of any size takes the memory of one page.
    await imports.get_import(session, auth.workspace_id, import_id)
    return StreamingResponse(
        _error_lines(replica or primary, auth.workspace_id, import_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )
