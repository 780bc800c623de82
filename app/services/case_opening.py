"""Opening follow-up cases: the worker applies the workspace's case rules to each
`response.created` event (never inline in ingest, so ingest does not slow down).

An answer that matches a rule joins its stakeholder's open case of that kind, or opens one, due
the rule's SLA after the answer was recorded. A dispatch job can run twice: a response triggers
at most one case of each kind (a unique constraint on case_responses), and at most one case per
stakeholder and kind is open (a partial unique index), so a second run changes nothing.
"""

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Case, CaseKind, CaseResponse, CaseStatus, SurveyResponse
from app.outbox import Dispatched, subscribe
from app.schemas.case_rules import CaseRule
from app.services.case_log import log_change
from app.services.case_matching import Trigger, matching_rules, needs_previous
from app.services.movements import previous_answer
from app.services.settings import load_settings

logger = logging.getLogger("app.cases")

# An answer recorded this long after it was given opens no case: importing a year of history
# is not a to-do list of overdue follow-ups.
MAX_TRIGGER_AGE = timedelta(days=30)


@subscribe("response.created")
async def open_cases_for_response(event: Dispatched) -> None:
    try:
        response_id = uuid.UUID(str(event.data["response_id"]))
    except (KeyError, ValueError):
        # Not an event ingest wrote; failing would hold back its other subscribers (webhooks).
        logger.warning("event %s names no response; no case rules applied", event.id)
        return
    await apply_case_rules(
        event.session, event.workspace_id, response_id, recorded_at=event.occurred_at
    )


async def apply_case_rules(
    session: AsyncSession, workspace_id: uuid.UUID, response_id: uuid.UUID, *, recorded_at: datetime
) -> list[uuid.UUID]:
    """Open or join the cases the response's answer calls for; the ids of the cases it joined
    or opened now (none when it did so before)."""
    response = await session.scalar(
        select(SurveyResponse).where(
            SurveyResponse.workspace_id == workspace_id, SurveyResponse.id == response_id
        )
    )
    # Gone (erased) or excluded since it was recorded: it no longer calls for anything.
    if (
        response is None
        or response.excluded
        or recorded_at - response.submitted_at > MAX_TRIGGER_AGE
    ):
        return []
    rules = (await load_settings(session, workspace_id)).case_rules
    if not rules:
        return []
    previous = await previous_answer(session, response) if needs_previous(rules) else None
    before = None if previous is None else previous.category
    trigger = Trigger(response.score, response.role, response.comment, before)
    touched = []
    for kind, rule in matching_rules(rules, trigger).items():
        case_id = await _join_or_open(session, response, kind, rule, recorded_at)
        if case_id is not None:
            touched.append(case_id)
    return touched


async def _join_or_open(
    session: AsyncSession,
    response: SurveyResponse,
    kind: CaseKind,
    rule: CaseRule,
    recorded_at: datetime,
) -> uuid.UUID | None:
    workspace_id = response.workspace_id
    seen = await session.scalar(
        select(
            exists().where(
                CaseResponse.workspace_id == workspace_id,
                CaseResponse.response_id == response.id,
                CaseResponse.kind == kind.value,
            )
        )
    )
    if seen:
        return None
    opened: Case | None = await session.scalar(
        insert(Case)
        .values(
            workspace_id=workspace_id,
            id=uuid.uuid4(),
            kind=kind.value,
            stakeholder_id=response.stakeholder_id,
            account_id=response.account_id,
            role=response.role,
            job_level=response.job_level,
            department=response.department,
            rule=rule.id,
            sla_hours=rule.sla_hours,
            status=CaseStatus.OPEN.value,
            due_at=recorded_at + timedelta(hours=rule.sla_hours),
            opened_at=recorded_at,
        )
        .on_conflict_do_nothing(
            index_elements=[Case.workspace_id, Case.stakeholder_id, Case.kind],
            # The partial index's own predicate, literally (a bound value would not infer it).
            index_where=text("status <> 'closed'"),
        )
        .returning(Case)
    )
    if opened is not None:
        case = opened
    else:
        # The stakeholder's open case of this kind (committed by another job, if concurrent).
        found: Case | None = await session.scalar(
            select(Case)
            .where(
                Case.workspace_id == workspace_id,
                Case.stakeholder_id == response.stakeholder_id,
                Case.kind == kind.value,
                Case.status != CaseStatus.CLOSED.value,
            )
            .with_for_update()
        )
        if found is None:  # closed in between: the next run of the job opens a new one
            raise RuntimeError("the stakeholder's open case closed meanwhile; retry")
        case = found
    await session.execute(
        insert(CaseResponse)
        .values(
            workspace_id=workspace_id,
            case_id=case.id,
            response_id=response.id,
            kind=kind.value,
            rule=rule.id,
        )
        .on_conflict_do_nothing()
    )
    trigger = {"response_id": str(response.id), "score": response.score, "rule": rule.id}
    if opened is not None:
        await log_change(
            session,
            case,
            action="opened",
            by=f"rule:{rule.id}",
            changes={"status": {"from": None, "to": CaseStatus.OPEN.value}},
            extra={"trigger": trigger},
        )
    else:
        await session.execute(
            update(Case)
            .where(Case.workspace_id == workspace_id, Case.id == case.id)
            .values(updated_at=func.now())
        )
        await log_change(
            session,
            case,
            action="response_added",
            by=f"rule:{rule.id}",
            changes={"response_id": {"from": None, "to": str(response.id)}},
            extra={"trigger": trigger},
        )
    return case.id
