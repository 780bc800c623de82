"""What every change of a case leaves behind: its change row (who, when, what) and its event.

The opening by the worker and every change through the API go through `log_change`, so no change
is kept without its event, nor announced without being kept.
"""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import rfc3339
from app.models import Case, CaseChange, CaseStatus
from app.services import events


def case_event_data(case: Case) -> dict[str, Any]:
    """A case as its events carry it: ids, the snapshot, the state; no comment, no note text."""

    def stamp(value: Any) -> str | None:
        return None if value is None else rfc3339(value)

    return {
        "case_id": str(case.id),
        "kind": case.kind,
        "rule": case.rule,
        "sla_hours": case.sla_hours,
        "status": case.status,
        "stakeholder_id": case.stakeholder_id,
        "account_id": case.account_id,
        "role": case.role,
        "job_level": case.job_level,
        "department": case.department,
        "owner": case.owner,
        "due_at": stamp(case.due_at),
        "outcome": case.outcome,
        "root_cause": case.root_cause,
        "opened_at": stamp(case.opened_at),
        "first_action_at": stamp(case.first_action_at),
        "closed_at": stamp(case.closed_at),
    }


def _event_type(action: str, case: Case) -> str:
    if action == "opened":
        return "case.opened"
    if action == "updated" and case.status == CaseStatus.CLOSED:
        return "case.closed"
    return "case.updated"


async def log_change(
    session: AsyncSession,
    case: Case,
    *,
    action: str,
    by: str,
    changes: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Keep the change and emit its event (case.opened, case.updated or case.closed) in the
    session's transaction; the event's id. `case` is the row after the change."""
    session.add(
        CaseChange(
            workspace_id=case.workspace_id,
            case_id=case.id,
            changed_by=by,
            action=action,
            changes=changes,
        )
    )
    data = {**case_event_data(case), "action": action, "changed_by": by, "changes": changes}
    return await events.emit(
        session, case.workspace_id, _event_type(action, case), data | (extra or {})
    )
