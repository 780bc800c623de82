"""How the worker looks at an account when it announces a change (stakeholder.moved,
account.risk_changed): as GET /v1/accounts/{id}/nps and GET /v1/accounts/at-risk do when asked
with no query parameters, at the moment the event is dispatched.

That is the workspace's default window (`default_window_days` up to the end of the current
minute), its default method, interval and thresholds, and its at-risk rules (`at_risk`). A
workspace whose default method is account_as_unit, which scores no single account, is counted
under latest_per_stakeholder, the service's own default.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import rfc3339
from app.presenters.scores import score_read
from app.schemas.settings import WorkspaceSettings
from app.scoring import Method
from app.services.cells import Cell, total
from app.services.counting import count
from app.services.risk_findings import Rules
from app.services.selection import Counting, Filters, Window, make_window
from app.services.settings import counting_from


@dataclass(frozen=True, slots=True)
class AccountView:
    window: Window
    counting: Counting
    rules: Rules


def default_view(settings: WorkspaceSettings, now: datetime) -> AccountView:
    method = Method(settings.default_method)
    if method is Method.ACCOUNT_AS_UNIT:
        method = Method.LATEST_PER_STAKEHOLDER
    return AccountView(
        window=make_window(None, None, days=settings.default_window_days, now=now),
        counting=counting_from(settings, method),
        rules=Rules.of(settings.at_risk),
    )


async def account_cell(
    session: AsyncSession, workspace_id: uuid.UUID, account_id: str, view: AccountView
) -> Cell:
    """The account's tally (and weighted figures) in the view's window."""
    selection = view.counting.selection([view.window], Filters(account_id=account_id))
    return total(await count(session, workspace_id, selection, ()))


def account_score_data(view: AccountView, cell: Cell) -> dict[str, Any]:
    """The account's score as events carry it: the score object of the API (n, counts,
    interval, precision), with the method and window it was counted under."""
    return {
        "method": view.counting.method.value,
        "from": rfc3339(view.window.start),
        "to": rfc3339(view.window.end),
        "score": score_read(cell, view.counting.options).model_dump(mode="json"),
    }
