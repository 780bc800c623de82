"""Domain events, raised in the transaction of the change they announce.

Webhooks do not exist yet. When they do, each function here enqueues its event as a job row (the
`jobs` table as a transactional outbox) in the caller's session, so the event commits or vanishes
with the change; until then these are the one place to do it, and deliver nothing.
"""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession


async def response_corrected(
    session: AsyncSession, workspace_id: uuid.UUID, response_id: uuid.UUID, revision: int
) -> None:
    """`response.corrected`: a stored response changed (a correction, an exclusion or an
    inclusion); `revision` is the revision it made (GET /v1/responses/{id}/revisions)."""
