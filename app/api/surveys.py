"""Survey definitions: the question, its overrides per role, the attributes to rate and the
texts per locale of a survey id that responses and invitations name."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi import Response as HttpResponse
from pydantic import AfterValidator

from app.api.auth import ReadAuth, WriteAuth
from app.api.deps import Cursor, Limit, UpdatedSince
from app.bodies import StrictRoute
from app.db import LookupSessionDep, ReadSessionDep, SessionDep
from app.pagination import DEFAULT_LIMIT
from app.presenters.surveys import survey_read
from app.schemas import SURVEY_ID_PATTERN, Page
from app.schemas.base import not_only_dots
from app.schemas.surveys import SurveyDefinition, SurveyRead
from app.services import surveys

router = APIRouter(prefix="/v1", tags=["surveys"], route_class=StrictRoute)

SurveyId = Annotated[
    str,
    Path(
        pattern=SURVEY_ID_PATTERN,
        description="the survey id responses name in `survey`: 1-100 of A-Za-z0-9._:@-",
    ),
    AfterValidator(not_only_dots),
]


@router.put(
    "/surveys/{survey_id}",
    response_model=SurveyRead,
    status_code=200,
    responses={201: {"model": SurveyRead, "description": "Created"}},
    operation_id="upsert_survey",
)
async def upsert_survey(
    survey_id: SurveyId,
    body: SurveyDefinition,
    session: SessionDep,
    auth: WriteAuth,
    response: HttpResponse,
) -> SurveyRead:
    """Create (201) or replace (200) a survey's definition; stored responses never change."""
    survey, created = await surveys.upsert_survey(session, auth.workspace_id, survey_id, body)
    response.status_code = 201 if created else 200
    return survey_read(survey)


@router.get("/surveys", response_model=Page[SurveyRead], operation_id="list_surveys")
async def list_surveys(
    session: ReadSessionDep,
    auth: ReadAuth,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    updated_since: UpdatedSince = None,
) -> Page[SurveyRead]:
    """List survey definitions in (updated_at, id) order, for paging and sync."""
    rows, next_cursor = await surveys.list_surveys(
        session, auth.workspace_id, limit=limit, cursor=cursor, updated_since=updated_since
    )
    return Page(data=[survey_read(r) for r in rows], next_cursor=next_cursor)


@router.get("/surveys/{survey_id}", response_model=SurveyRead, operation_id="get_survey")
async def get_survey(survey_id: SurveyId, session: LookupSessionDep, auth: ReadAuth) -> SurveyRead:
    """Read one survey definition; 404 when the id has none (it still works with the defaults)."""
    return survey_read(await surveys.get_survey(session, auth.workspace_id, survey_id))


@router.delete("/surveys/{survey_id}", status_code=204, operation_id="delete_survey")
async def delete_survey(survey_id: SurveyId, session: SessionDep, auth: WriteAuth) -> None:
    """Delete a definition: responses naming the survey keep it and keep counting."""
    await surveys.delete_survey(session, auth.workspace_id, survey_id)
