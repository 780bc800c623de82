"""Responses: record one or a batch, list, read, correct or exclude, and their revisions."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi import Response as HttpResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.auth import ReadAuth, WriteAuth
from app.api.deps import Cursor, Limit, UpdatedSince, utcnow
from app.api.idempotency import IdempotentWrite, rereads
from app.bodies import StrictRoute
from app.db import LookupSessionDep, ReadSessionDep, SessionDep
from app.errors import NotFound
from app.models import Role
from app.pagination import DEFAULT_LIMIT
from app.presenters.responses import batch_result
from app.schemas import (
    ID_PATTERN,
    SURVEY_PATTERN,
    BatchRequest,
    BatchResult,
    Page,
    ResponseCreate,
    ResponsePatch,
    ResponseRead,
    RevisionRead,
    Timestamp,
    problem_doc,
)
from app.scoring import Category
from app.services import corrections, ingest, responses, revisions
from app.services.batches import check_size
from app.services.responses import ResponseFilters

router = APIRouter(prefix="/v1", tags=["responses"], route_class=StrictRoute)

IDEMPOTENCY_DOC: dict[int | str, dict[str, Any]] = {
    409: problem_doc(
        "A request with the same Idempotency-Key is still in progress, or a concurrent request "
        "changed the same rows: retry after `Retry-After` seconds",
        retry_after=True,
    ),
    422: problem_doc("Invalid body, or an Idempotency-Key reused with another body"),
}
RECORD_DOC: dict[int | str, dict[str, Any]] = {
    **IDEMPOTENCY_DOC,
    410: problem_doc(
        "Replay (`Idempotent-Replayed: true`) of a request whose response was erased since"
    ),
    409: problem_doc(
        "A request with the same Idempotency-Key is still in progress, or "
        "(type /problems/external-id-conflict) the external_id is stored with other content: "
        "`response_id` names the stored response, `errors` the fields that differ "
        "(`Retry-After` is set on the transient conflicts only)",
        retry_after=True,
    ),
}


@router.post(
    "/responses",
    response_model=ResponseRead,
    status_code=201,
    responses={
        200: {
            "model": ResponseRead,
            "description": "external_id already stored with the same content: that response",
        },
        **RECORD_DOC,
    },
    operation_id="record_response",
)
async def record_response(body: ResponseCreate, call: IdempotentWrite) -> HttpResponse:
    """Record one response (201); a known external_id: the stored one (200) or a 409."""
    # A new response's Idempotency-Key record is written by the statement that stores it.
    keep = call.idempotency.kept_with_answer(201, RESPONSE)
    recorded = await ingest.record_response(
        call.session,
        call.subject.workspace_id,
        body,
        now=utcnow(),
        companions=() if keep is None else (keep,),
    )
    return call.idempotency.respond(
        ResponseRead.model_validate(recorded.response),
        201 if recorded.created else 200,
        reread=(RESPONSE, recorded.response.id),
    )


RESPONSE = "response"


@rereads(RESPONSE)
async def _reread_response(
    session: AsyncSession, workspace_id: uuid.UUID, response_id: str
) -> ResponseRead | None:
    """A replay shows the response as it is now; erased, it is gone."""
    try:
        found = await responses.get_response(session, workspace_id, uuid.UUID(response_id))
    except NotFound:
        return None
    return ResponseRead.model_validate(found)


@router.post(
    "/responses/batch",
    response_model=BatchResult,
    status_code=200,
    responses={
        207: {"model": BatchResult, "description": "Some items were refused; see results"},
        413: problem_doc("More than 1,000 items or a body over 2 MB: nothing stored"),
        **IDEMPOTENCY_DOC,
    },
    operation_id="record_responses_batch",
)
async def record_batch(body: BatchRequest, call: IdempotentWrite) -> HttpResponse:
    """Record up to 1,000 responses: 200 when every item is stored, 207 with per-item results."""
    check_size(body.responses, "responses")
    outcomes = await ingest.record_batch(
        call.session, call.subject.workspace_id, body.responses, now=utcnow()
    )
    result = batch_result(outcomes)
    return call.idempotency.respond(result, 207 if result.failed else 200)


async def response_filters(
    updated_since: UpdatedSince = None,
    account_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    stakeholder_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    role: Role | None = None,
    category: Category | None = None,
    from_: Annotated[
        Timestamp | None, Query(alias="from", description="submitted at or after (RFC 3339)")
    ] = None,
    to: Annotated[Timestamp | None, Query(description="submitted before (RFC 3339)")] = None,
    excluded: bool | None = None,
    external_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    survey: Annotated[str | None, Query(pattern=SURVEY_PATTERN)] = None,
) -> ResponseFilters:
    """The filters of GET /v1/responses, paging aside (the exports take them too)."""
    return ResponseFilters(
        updated_since=updated_since,
        account_id=account_id,
        stakeholder_id=stakeholder_id,
        role=role,
        category=category,
        submitted_from=from_,
        submitted_to=to,
        excluded=excluded,
        external_id=external_id,
        survey=survey,
    )


ResponseFiltersDep = Annotated[ResponseFilters, Depends(response_filters)]


@router.get("/responses", response_model=Page[ResponseRead], operation_id="list_responses")
async def list_responses(
    session: ReadSessionDep,
    auth: ReadAuth,
    filters: ResponseFiltersDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ResponseRead]:
    """List responses in (updated_at, id) order, with filters."""
    rows, next_cursor = await responses.list_responses(
        session, auth.workspace_id, limit=limit, cursor=cursor, filters=filters
    )
    return Page(data=[ResponseRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/responses/{response_id}", response_model=ResponseRead, operation_id="get_response")
async def get_response(
    response_id: uuid.UUID, session: LookupSessionDep, auth: ReadAuth
) -> ResponseRead:
    """Read one response."""
    return ResponseRead.model_validate(
        await responses.get_response(session, auth.workspace_id, response_id)
    )


@router.patch(
    "/responses/{response_id}", response_model=ResponseRead, operation_id="update_response"
)
async def update_response(
    response_id: uuid.UUID, body: ResponsePatch, session: SessionDep, auth: WriteAuth
) -> ResponseRead:
    """Correct score, comment, attributes or submitted_at, or exclude or include (a revision)."""
    response = await corrections.correct_response(
        session, auth.workspace_id, response_id, body, by=auth.name, now=utcnow()
    )
    return ResponseRead.model_validate(response)


@router.get(
    "/responses/{response_id}/revisions",
    response_model=Page[RevisionRead],
    operation_id="list_response_revisions",
)
async def list_revisions(
    response_id: uuid.UUID,
    session: ReadSessionDep,
    auth: ReadAuth,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[RevisionRead]:
    """The response as recorded (revision 1), then each correction in order."""
    page, next_cursor = await revisions.revision_page(
        session, auth.workspace_id, response_id, limit=limit, cursor=cursor
    )
    return Page(data=[RevisionRead.model_validate(r) for r in page], next_cursor=next_cursor)
