"""Follow-up cases (read scope to list and read, write scope to work them and add notes).

Cases are opened by the worker from answers under the workspace's case rules (settings
`case_rules`), never by a call.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Response as HttpResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.auth import ReadAuth, WriteAuth
from app.api.deps import Cursor, Limit, utcnow
from app.api.idempotency import IdempotentWrite, rereads
from app.bodies import StrictRoute
from app.db import LookupSessionDep, ReadSessionDep, SessionDep
from app.models import CaseKind, CaseNote, CaseStatus, Role
from app.pagination import DEFAULT_LIMIT
from app.presenters.case_metrics import case_metrics_read
from app.presenters.cases import case_detail, case_read
from app.schemas import ID_PATTERN, Page, Timestamp, problem_doc
from app.schemas.case_metrics import CaseMetricsRead
from app.schemas.case_rules import RULE_ID_PATTERN
from app.schemas.cases import CaseDetail, CaseNoteCreate, CaseNoteRead, CasePatch, CaseRead
from app.services import case_metrics, cases

router = APIRouter(prefix="/v1", tags=["cases"], route_class=StrictRoute)


@router.get("/cases", response_model=Page[CaseRead], operation_id="list_cases")
async def list_cases(
    session: ReadSessionDep,
    auth: ReadAuth,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    status: CaseStatus | None = None,
    kind: Annotated[CaseKind | None, Query(description="recovery or advocacy")] = None,
    owner: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    account_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    role: Annotated[Role | None, Query(description="the role when the case opened")] = None,
    rule: Annotated[str | None, Query(pattern=RULE_ID_PATTERN)] = None,
    overdue: Annotated[bool | None, Query(description="true: not closed and past due")] = None,
) -> Page[CaseRead]:
    """List cases in (updated_at, id) order, with filters."""
    now = utcnow()
    rows, next_cursor = await cases.list_cases(
        session,
        auth.workspace_id,
        now=now,
        limit=limit,
        cursor=cursor,
        status=status,
        kind=kind,
        owner=owner,
        account_id=account_id,
        role=role,
        rule=rule,
        overdue=overdue,
    )
    return Page(data=[case_read(c, now) for c in rows], next_cursor=next_cursor)


# Before /cases/{case_id}, so "metrics" is not read as an id.
@router.get("/cases/metrics", response_model=CaseMetricsRead, operation_id="get_case_metrics")
async def get_case_metrics(
    session: ReadSessionDep,
    auth: ReadAuth,
    from_: Annotated[
        Timestamp | None, Query(alias="from", description="opened at or after (RFC 3339)")
    ] = None,
    to: Annotated[Timestamp | None, Query(description="opened before (RFC 3339)")] = None,
    kind: Annotated[CaseKind, Query(description="recovery or advocacy")] = CaseKind.RECOVERY,
    owner: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    account_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    role: Annotated[Role | None, Query(description="the role when the case opened")] = None,
    rule: Annotated[str | None, Query(pattern=RULE_ID_PATTERN)] = None,
) -> CaseMetricsRead:
    """Does closing the loop work: counts, Kaplan-Meier times to first action and to close
    (open cases censored at now), the share closed within SLA, and recovery beside detractors
    with no case (the two-share test)."""
    filters = case_metrics.Filters(
        kind=kind, from_=from_, to=to, account_id=account_id, role=role, rule=rule, owner=owner
    )
    figures = await case_metrics.case_metrics(session, auth.workspace_id, filters, now=utcnow())
    return case_metrics_read(figures, filters)


@router.get("/cases/{case_id}", response_model=CaseDetail, operation_id="get_case")
async def get_case(case_id: uuid.UUID, session: LookupSessionDep, auth: ReadAuth) -> CaseDetail:
    """Read a case with its triggering answers, the stakeholder's score history, notes, changes."""
    return case_detail(await cases.case_view(session, auth.workspace_id, case_id), utcnow())


@router.patch(
    "/cases/{case_id}",
    response_model=CaseRead,
    responses={
        409: problem_doc("A step back in status (open, in_progress, closed), or a closed case"),
        422: problem_doc("Invalid body; closing without an outcome, or one of the other kind"),
    },
    operation_id="update_case",
)
async def update_case(
    case_id: uuid.UUID, body: CasePatch, session: SessionDep, auth: WriteAuth
) -> CaseRead:
    """Move a case forward, assign it, set its due_at, or close it with an outcome."""
    case = await cases.update_case(session, auth.workspace_id, case_id, body, by=auth.name)
    return case_read(case, utcnow())


@router.post(
    "/cases/{case_id}/notes",
    response_model=CaseNoteRead,
    status_code=201,
    responses={
        409: problem_doc(
            "A request with the same Idempotency-Key is still in progress", retry_after=True
        ),
        410: problem_doc(
            "Replay (`Idempotent-Replayed: true`) of a request whose note was erased since "
            "(with its case, when its stakeholder was erased)"
        ),
        422: problem_doc("Invalid body, or an Idempotency-Key reused with another body"),
    },
    operation_id="add_case_note",
)
async def add_case_note(
    case_id: uuid.UUID,
    body: CaseNoteCreate,
    call: IdempotentWrite,
) -> HttpResponse:
    """Add a note to a case (201)."""
    note = await cases.add_note(
        call.session, call.subject.workspace_id, case_id, body.body, by=call.subject.name
    )
    return call.idempotency.respond(
        CaseNoteRead.model_validate(note), 201, reread=(CASE_NOTE, note.id)
    )


CASE_NOTE = "case_note"


@rereads(CASE_NOTE)
async def _reread_note(
    session: AsyncSession, workspace_id: uuid.UUID, note_id: str
) -> CaseNoteRead | None:
    """A replay shows the note again; gone with its case (an erased stakeholder's), it is gone."""
    note = await session.get(CaseNote, (workspace_id, uuid.UUID(note_id)))
    return None if note is None else CaseNoteRead.model_validate(note)
