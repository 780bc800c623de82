"""Reading stored responses. Recording them is app.services.ingest; correcting or excluding
them, app.services.corrections."""

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.models import Role, SurveyResponse
from app.pagination import paginate
from app.scoring import Category
from app.sql import is_category


async def get_response(
    session: AsyncSession, workspace_id: uuid.UUID, response_id: uuid.UUID
) -> SurveyResponse:
    response = await session.get(
        SurveyResponse, (workspace_id, response_id), populate_existing=True
    )
    if response is None:
        raise NotFound(f"response {response_id} does not exist")
    return response


async def list_responses(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None = None,
    updated_since: datetime | None = None,
    account_id: str | None = None,
    stakeholder_id: str | None = None,
    role: Role | None = None,
    category: Category | None = None,
    submitted_from: datetime | None = None,
    submitted_to: datetime | None = None,
    excluded: bool | None = None,
    external_id: str | None = None,
    survey: str | None = None,
) -> tuple[list[SurveyResponse], str | None]:
    query = select(SurveyResponse).where(SurveyResponse.workspace_id == workspace_id)
    if updated_since is not None:
        query = query.where(SurveyResponse.updated_at >= updated_since)
    if account_id is not None:
        query = query.where(SurveyResponse.account_id == account_id)
    if stakeholder_id is not None:
        query = query.where(SurveyResponse.stakeholder_id == stakeholder_id)
    if role is not None:
        query = query.where(SurveyResponse.role == role.value)
    if category is not None:
        query = query.where(is_category(SurveyResponse.score, category))
    if submitted_from is not None:
        query = query.where(SurveyResponse.submitted_at >= submitted_from)
    if submitted_to is not None:
        query = query.where(SurveyResponse.submitted_at < submitted_to)
    if excluded is not None:
        query = query.where(SurveyResponse.excluded.is_(excluded))
    if external_id is not None:
        query = query.where(SurveyResponse.external_id == external_id)
    if survey is not None:
        query = query.where(SurveyResponse.survey == survey)
    return await paginate(
        session,
        query,
        updated_col=SurveyResponse.updated_at,
        id_col=SurveyResponse.id,
        limit=limit,
        cursor=cursor,
    )
