"""Deletions sync: what was deleted, for a CRM that syncs changes with updated_since."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.auth import ReadAuth
from app.api.deps import AppSettingsDep, Cursor, Limit
from app.bodies import StrictRoute
from app.db import ReadSessionDep
from app.models import DeletionKind
from app.pagination import DEFAULT_LIMIT
from app.presenters.deletions import deletion_read
from app.schemas import Page, Timestamp, problem_doc
from app.schemas.deletions import DeletionRead
from app.services import deletions

router = APIRouter(prefix="/v1", tags=["deletions"], route_class=StrictRoute)

DESCRIPTION = """\
Tombstones of deleted accounts, stakeholders and responses, in (`deleted_at`, sequence) order.
Deleting an account records the account, each of its stakeholders and each response that went
with it; deleting a stakeholder records them and their responses. A tombstone holds ids only
(and a response's `external_id`), never a name, email or comment.

**Retention**: tombstones are kept at least 90 days (`NPS_DELETION_RETENTION_DAYS`, default 90,
never less). A `since` (or a cursor) older than that is answered 410 `resync-required`, because
tombstones before it may be gone: do a full resync and sync deletions from the time it started.

**Sync recipe**: follow `next_cursor` to the end and keep the newest `deleted_at` you saw; next
time ask with `since` a few minutes before it. `deleted_at` is the start of the deleting
transaction and transactions commit out of order, so the overlap catches late commits; seeing a
tombstone twice is harmless (the object is already gone)."""


@router.get(
    "/deletions",
    response_model=Page[DeletionRead],
    operation_id="list_deletions",
    description=DESCRIPTION,
    responses={410: problem_doc("`since` or the cursor is before the retention horizon")},
)
async def list_deletions(
    session: ReadSessionDep,
    auth: ReadAuth,
    app_settings: AppSettingsDep,
    since: Annotated[
        Timestamp | None,
        Query(description="only deletions at or after this instant (RFC 3339 with offset)"),
    ] = None,
    kind: Annotated[DeletionKind | None, Query(description="only this kind of object")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[DeletionRead]:
    """List what was deleted, oldest first, for deletions sync."""
    rows, next_cursor = await deletions.list_deletions(
        session,
        auth.workspace_id,
        retention_days=app_settings.deletion_retention_days,
        limit=limit,
        cursor=cursor,
        since=since,
        kind=kind,
    )
    return Page(data=[deletion_read(r) for r in rows], next_cursor=next_cursor)
