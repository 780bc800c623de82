"""Reading stored responses. Recording them is app.services.ingest; correcting or excluding
them, app.services.corrections."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
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


@dataclass(frozen=True, slots=True)
class ResponseFilters:
    """The filters of GET /v1/responses, which its export (app.services.exports) shares."""

    updated_since: datetime | None = None
    account_id: str | None = None
    stakeholder_id: str | None = None
    role: Role | None = None
    category: Category | None = None
    submitted_from: datetime | None = None
    submitted_to: datetime | None = None
    excluded: bool | None = None
    external_id: str | None = None
    survey: str | None = None


def filtered_responses(workspace_id: uuid.UUID, filters: ResponseFilters) -> Select[SurveyResponse]:
    """The workspace's responses that pass `filters`, unordered."""
    f = filters
    query = select(SurveyResponse).where(SurveyResponse.workspace_id == workspace_id)
    if f.updated_since is not None:
        query = query.where(SurveyResponse.updated_at >= f.updated_since)
    if f.account_id is not None:
        query = query.where(SurveyResponse.account_id == f.account_id)
    if f.stakeholder_id is not None:
        query = query.where(SurveyResponse.stakeholder_id == f.stakeholder_id)
    if f.role is not None:
        query = query.where(SurveyResponse.role == f.role.value)
    if f.category is not None:
        query = query.where(is_category(SurveyResponse.score, f.category))
    if f.submitted_from is not None:
        query = query.where(SurveyResponse.submitted_at >= f.submitted_from)
    if f.submitted_to is not None:
        query = query.where(SurveyResponse.submitted_at < f.submitted_to)
    if f.excluded is not None:
        query = query.where(SurveyResponse.excluded.is_(f.excluded))
    if f.external_id is not None:
        query = query.where(SurveyResponse.external_id == f.external_id)
    if f.survey is not None:
        query = query.where(SurveyResponse.survey == f.survey)
    return query


async def list_responses(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    limit: int,
    filters: ResponseFilters,
    cursor: str | None = None,
) -> tuple[list[SurveyResponse], str | None]:
    query = filtered_responses(workspace_id, filters)
    return await paginate(
        session,
        query,
        updated_col=SurveyResponse.updated_at,
        id_col=SurveyResponse.id,
        limit=limit,
        cursor=cursor,
    )
