"""Every event about one answer carries its account's current score.

A receiver of `response.created` (or `response.excluded`, `response.included`,
`response.corrected`, `invitation.answered`) wants to know where the account stands now, not
only the answer. Counting the account inside the request that records an answer would put a
query on the hot path, so the worker adds it when it dispatches the event: `account_score`, as
GET /v1/accounts/{id}/nps answers with no query parameters at that moment (app.services
.account_view: the workspace's default window, method and interval; its n, counts and
precision), written into the stored event before any delivery reads it. A dispatch repeated
after a failure keeps the score the first one wrote.
"""

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.expression import cast

from app.models import Event
from app.outbox import Dispatched, subscribe
from app.services.account_view import account_cell, account_score_data, default_view
from app.services.settings import load_settings

SCORED = (
    "response.created",
    "response.excluded",
    "response.included",
    "response.corrected",
    "invitation.answered",
)


@subscribe(*SCORED)
async def add_account_score(event: Dispatched) -> None:
    account_id = event.data.get("account_id")
    if not account_id or "account_score" in event.data:
        return
    session, workspace_id = event.session, event.workspace_id
    view = default_view(await load_settings(session, workspace_id), datetime.now(UTC))
    score = account_score_data(view, await account_cell(session, workspace_id, account_id, view))
    await session.execute(
        update(Event)
        .where(Event.workspace_id == workspace_id, Event.id == event.id)
        .values(data=Event.data.op("||")(cast({"account_score": score}, JSONB)))
    )
    event.data["account_score"] = score
