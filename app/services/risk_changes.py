"""`account.risk_changed`: after each response event (created, excluded, included, corrected)
the worker reassesses the response's account under the workspace's default at-risk parameters
(app.services.account_view) and announces it when the account entered or left the list.

Each account's last known state is kept in `account_risk`. The worker locks that row before it
assesses, so two jobs for one account take turns and the second compares against what the first
stored; a repeated dispatch finds the state it wrote already and emits nothing. The assessment
reads the stored answers, not the event, so events handled out of order still leave the last
state right. An account never assessed counts as off the list: its first assessment announces
`entered` if it is flagged, and nothing if not. A change of reasons while it stays on (or off)
the list is stored and announced by nothing.
"""

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import rfc3339
from app.models import Account, AccountRisk
from app.outbox import Dispatched, subscribe
from app.presenters.at_risk import reason_read
from app.services import (
    case_opening,  # noqa: F401  (subscribes first: see below)
    events,
)
from app.services.account_view import account_score_data, default_view
from app.services.at_risk import assess_account
from app.services.settings import load_settings

logger = logging.getLogger("app.events")

RISK_CHANGED = "account.risk_changed"

# case_opening's subscriber is registered before this one (it is imported above), so a case
# that an answer opens is in the account's `open_case` when the same dispatch reassesses it.


@subscribe("response.created", "response.excluded", "response.included", "response.corrected")
async def reassess_account(event: Dispatched) -> None:
    account_id = event.data.get("account_id")
    if not isinstance(account_id, str):
        logger.warning("event %s names no account; no risk reassessed", event.id)
        return
    await reassess_risk(event.session, event.workspace_id, account_id, now=datetime.now(UTC))


async def reassess_risk(
    session: AsyncSession, workspace_id: uuid.UUID, account_id: str, *, now: datetime
) -> uuid.UUID | None:
    """Assess the account now, store its state, and emit `account.risk_changed` when it
    entered or left the at-risk list; the event's id, or None (no change, or no account)."""
    state = await _locked_state(session, workspace_id, account_id)
    if state is None:  # the account is gone (deleted, with its answers)
        return None
    view = default_view(await load_settings(session, workspace_id), now)
    assessed = await assess_account(
        session,
        workspace_id,
        account_id,
        window=view.window,
        counting=view.counting,
        rules=view.rules,
    )
    if assessed is None:
        return None
    reasons = [finding.code.value for finding in assessed.findings]
    at_risk = bool(reasons)
    if at_risk == state.at_risk:
        if reasons != state.reasons:
            await _store(session, state, reasons=reasons)
        return None
    data: dict[str, Any] = {
        "account_id": account_id,
        "change": "entered" if at_risk else "left",
        "reasons": reasons,
        "evidence": [
            reason_read(finding, view.counting).model_dump(mode="json")
            for finding in assessed.findings
        ],
        "previous_reasons": list(state.reasons),
        "previous_changed_at": None if state.changed_at is None else rfc3339(state.changed_at),
        "open_case": {
            "count": len(assessed.open_cases),
            "case_ids": [str(case_id) for case_id in assessed.open_cases],
        },
        "account_score": account_score_data(view, assessed.cell),
        "rules": {"nps_below": view.rules.nps_below, "silent_days": view.rules.silent_days},
    }
    event_id = await events.emit(session, workspace_id, RISK_CHANGED, data)
    await _store(session, state, reasons=reasons, change_event_id=event_id)
    return event_id


async def _locked_state(
    session: AsyncSession, workspace_id: uuid.UUID, account_id: str
) -> AccountRisk | None:
    """The account's state row, locked until the transaction ends (created off the list when
    there is none); None when there is no such account."""
    # INSERT ... SELECT: nothing when the account is gone, rather than a foreign-key error.
    await session.execute(
        insert(AccountRisk)
        .from_select(
            ["workspace_id", "account_id"],
            select(Account.workspace_id, literal(account_id)).where(
                Account.workspace_id == workspace_id, Account.id == account_id
            ),
        )
        .on_conflict_do_nothing()
    )
    state: AccountRisk | None = await session.scalar(
        select(AccountRisk)
        .where(AccountRisk.workspace_id == workspace_id, AccountRisk.account_id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return state


async def _store(
    session: AsyncSession,
    state: AccountRisk,
    *,
    reasons: list[str],
    change_event_id: uuid.UUID | None = None,
) -> None:
    values: dict[str, Any] = {
        "at_risk": bool(reasons),
        "reasons": reasons,
        "updated_at": func.now(),
    }
    if change_event_id is not None:
        # now(): the transaction's start, the instant the event's occurred_at records too.
        values |= {"changed_at": func.now(), "change_event_id": change_event_id}
    await session.execute(
        update(AccountRisk)
        .where(
            AccountRisk.workspace_id == state.workspace_id,
            AccountRisk.account_id == state.account_id,
        )
        .values(**values)
    )
