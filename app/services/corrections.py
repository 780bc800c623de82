"""Correcting a stored response: score, comment, attributes, submitted_at, exclusion.

Each real change stores a revision (who, when, each field from and to) in the same transaction,
relinks the stakeholder's chain from the earlier of the old and new submitted_at, so every score
and movement follows, and emits its events (`response.excluded` or `response.included` when the
exclusion flips, `response.corrected` for the rest; app.services.events).
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.canonical import canonical_json
from app.errors import NotFound, Unprocessable, field_error
from app.models import ResponseRevision, SurveyResponse
from app.schemas import ResponsePatch
from app.services import events
from app.services.chain import lock_chains, relink
from app.services.ingest import MAX_FUTURE
from app.services.responses import get_response
from app.services.revisions import to_wire
from app.services.surveys import catalog_problem, find_definition


def _same(field: str, old: Any, new: Any) -> bool:
    if field == "attributes":
        # As stored: {"a": 1} and {"a": true} differ though Python calls them equal.
        return canonical_json(old) == canonical_json(new)
    return bool(old == new)


async def correct_response(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    response_id: uuid.UUID,
    patch: ResponsePatch,
    *,
    by: str,
    now: datetime,
) -> SurveyResponse:
    """Apply a patch; a patch that changes nothing stores no revision and returns the response."""
    if patch.submitted_at is not None and patch.submitted_at > now + MAX_FUTURE:
        raise Unprocessable(
            "submitted_at is more than 5 minutes in the future",
            errors=[field_error(["body", "submitted_at"], "in the future")],
        )
    owner = await session.scalar(
        select(SurveyResponse.stakeholder_id).where(
            SurveyResponse.workspace_id == workspace_id, SurveyResponse.id == response_id
        )
    )
    if owner is None:
        raise NotFound(f"response {response_id} does not exist")
    # The chain lock before the row, as every writer of answers takes them.
    await lock_chains(session, workspace_id, [owner])
    response = await session.scalar(
        select(SurveyResponse)
        .where(SurveyResponse.workspace_id == workspace_id, SurveyResponse.id == response_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if response is None:
        raise NotFound(f"response {response_id} does not exist")
    if patch.attributes is not None and response.survey is not None:
        definition = await find_definition(session, workspace_id, response.survey)
        problem = catalog_problem(patch.attributes, definition, ("body",))
        if problem is not None:
            raise problem
    changes = {
        field: {"from": to_wire(field, getattr(response, field)), "to": to_wire(field, new)}
        for field, new in patch.changes().items()
        if not _same(field, getattr(response, field), new)
    }
    if not changes:
        return response
    old_submitted = response.submitted_at
    new_submitted = patch.submitted_at or old_submitted
    await session.execute(
        update(SurveyResponse)
        .where(SurveyResponse.workspace_id == workspace_id, SurveyResponse.id == response_id)
        .values(
            **{field: new for field, new in patch.changes().items() if field in changes},
            updated_at=func.now(),
            # Relinked below; 'infinity' puts the row in the part of the chain relink rebuilds
            # even when it moved while excluded (an excluded row's link is not kept).
            superseded_at=literal_column("'infinity'"),
        )
    )
    revision = await session.scalar(
        select(func.coalesce(func.max(ResponseRevision.revision), 1) + 1).where(
            ResponseRevision.workspace_id == workspace_id,
            ResponseRevision.response_id == response_id,
        )
    )
    assert revision is not None
    session.add(
        ResponseRevision(
            workspace_id=workspace_id,
            response_id=response_id,
            revision=revision,
            changed_by=by,
            changes=changes,
        )
    )
    await session.flush()
    await relink(session, workspace_id, {owner: min(old_submitted, new_submitted)})
    corrected = await get_response(session, workspace_id, response_id)
    await events.response_corrected(session, corrected, revision, changes)
    return corrected
