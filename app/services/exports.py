"""Exports: the rows of GET /v1/responses, read in keyset pages so a file of any size is
streamed with the memory of one page (app.api.exports writes them out)."""

import uuid
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import in_workspace, session_scope
from app.models import SurveyResponse
from app.services.responses import ResponseFilters, filtered_responses

EXPORT_PAGE = 500


async def response_pages(
    sessionmaker: async_sessionmaker[AsyncSession],
    workspace_id: uuid.UUID,
    filters: ResponseFilters,
    *,
    page_size: int = EXPORT_PAGE,
) -> AsyncIterator[list[SurveyResponse]]:
    """The responses that pass `filters`, in id order, one page at a time.

    Each page is its own short read (its own transaction, acting in the workspace), so a slow
    client never holds a transaction or a snapshot open. Pages follow the id, which never
    changes: a response corrected or excluded during the export is written once, as it was when
    its page was read (the (updated_at, id) order of the list would move it to a later page)."""
    after: uuid.UUID | None = None
    while True:
        query = filtered_responses(workspace_id, filters)
        if after is not None:
            query = query.where(SurveyResponse.id > after)
        query = query.order_by(SurveyResponse.id).limit(page_size)
        async with session_scope(sessionmaker) as session:
            await in_workspace(session, workspace_id)
            rows = list((await session.scalars(query)).all())
            # Detached from a closed session: the page is read once, then dropped.
            session.expunge_all()
        if rows:
            yield rows
        if len(rows) < page_size:
            return
        after = rows[-1].id
