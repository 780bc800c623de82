"""`stakeholder.moved`: announced by the worker from `response.created` (never inline in
ingest, so ingest does not slow down) when a new answer puts its stakeholder in another
category (promoter, passive, detractor) than their previous counted answer.

A movement as GET /v1/movements lists it, announced once, when it changes where the stakeholder
stands now. So:
- a first answer moves nobody; an answer in the same category as the previous one neither;
- only the stakeholder's latest counted answer moves them: an answer backdated before a later
  one (a history import, or a batch holding two answers of one person, where only the last
  counts) changes nothing about where they stand, and is not announced;
- corrections and exclusions announce no movement: they have their own events
  (`response.corrected` carries the score from and to; `response.excluded`/`included`);
- an answer excluded or erased before the worker got to it is not announced.
A dispatch job can run twice: the event's id is derived from the response (events.emit_once),
so the second run writes nothing.
"""

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import JobLevel, Role, SurveyResponse
from app.outbox import Dispatched, subscribe
from app.presenters.movements import movement_read
from app.services import events
from app.services.account_view import account_cell, account_score_data, default_view
from app.services.movements import Answer, Movement, is_latest, previous_answer
from app.services.settings import load_settings

logger = logging.getLogger("app.events")

MOVED = "stakeholder.moved"


@subscribe("response.created")
async def announce_movement(event: Dispatched) -> None:
    try:
        response_id = uuid.UUID(str(event.data["response_id"]))
    except (KeyError, ValueError):
        logger.warning("event %s names no response; no movement looked for", event.id)
        return
    await announce_move(event.session, event.workspace_id, response_id, now=datetime.now(UTC))


async def announce_move(
    session: AsyncSession, workspace_id: uuid.UUID, response_id: uuid.UUID, *, now: datetime
) -> uuid.UUID | None:
    """Emit `stakeholder.moved` when the response moved its stakeholder; the event's id (the
    same on a repeat), or None when it moved nobody."""
    response = await session.scalar(
        select(SurveyResponse).where(
            SurveyResponse.workspace_id == workspace_id, SurveyResponse.id == response_id
        )
    )
    if response is None or response.excluded:
        return None
    previous = await previous_answer(session, response)
    if previous is None or previous.category == response.category:
        return None
    if not await is_latest(session, response):
        return None
    move = Movement(
        stakeholder_id=response.stakeholder_id,
        account_id=response.account_id,
        role=Role(response.role),
        job_level=JobLevel(response.job_level),
        before=previous,
        after=Answer(response.id, response.score, response.submitted_at),
    )
    view = default_view(await load_settings(session, workspace_id), now)
    cell = await account_cell(session, workspace_id, response.account_id, view)
    data: dict[str, Any] = {
        **movement_read(move).model_dump(mode="json"),
        "department": response.department,
        "survey": response.survey,
        "account_score": account_score_data(view, cell),
    }
    return await events.emit_once(session, workspace_id, MOVED, data, key=str(response.id))
