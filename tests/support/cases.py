"""Follow-up cases in the tests: the case rules as the API shows them, the events that open
cases, the worker that opens them, and what they left in the database."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from app.config import Settings
from app.db import session_scope
from app.models import (
    Account,
    Case,
    CaseChange,
    CaseResponse,
    Event,
    Stakeholder,
    SurveyResponse,
)
from app.services import events
from app.worker import Worker
from tests.support.clock import ago, minute_end
from tests.support.harness import Tenant

DEFAULT_CASE_RULES: list[dict[str, Any]] = [
    {"id": "detractor", "kind": "detractor", "sla_hours": 48, "roles": None},
    {
        "id": "decision_maker_passive",
        "kind": "passive_or_lower",
        "sla_hours": 48,
        "roles": ["decision_maker"],
    },
    {
        "id": "advocacy",
        "kind": "advocacy",
        "sla_hours": 168,
        "roles": ["decision_maker", "influencer"],
    },
]
# One rule of every kind, away from the defaults.
CUSTOM_CASE_RULES: list[dict[str, Any]] = [
    {
        "id": "churn-words",
        "kind": "keyword",
        "sla_hours": 4,
        "keywords": ["cancel", "too slow"],
        "roles": None,
    },
    {"id": "exec-detractor", "kind": "detractor", "sla_hours": 24, "roles": ["decision_maker"]},
    {
        "id": "key-passive",
        "kind": "passive_or_lower",
        "sla_hours": 72,
        "roles": ["decision_maker", "influencer", "user"],
    },
    {"id": "fell", "kind": "fell_category", "sla_hours": 96, "roles": None},
    {"id": "champions", "kind": "advocacy", "sla_hours": 336, "roles": ["decision_maker"]},
]


SETTINGS = Settings(database_url="postgresql://unused@localhost/unused")


async def announce(tenant: Tenant, *response_ids: str) -> None:
    """Emit `response.created` for stored responses, in the shape ingest emits it, committed."""
    async with session_scope(tenant.db.sessionmaker) as session:
        rows = await session.scalars(
            select(SurveyResponse).where(
                SurveyResponse.workspace_id == tenant.id,
                SurveyResponse.id.in_([uuid.UUID(r) for r in response_ids]),
            )
        )
        by_id = {str(r.id): r for r in rows}
        await events.emit_many(
            session,
            tenant.id,
            [("response.created", events.response_data(by_id[r])) for r in response_ids],
        )


async def run_worker(tenant: Tenant) -> int:
    """Run every due job (the events' dispatch among them) as the worker does; how many ran."""
    return await Worker(tenant.db.sessionmaker, SETTINGS).drain()


def account_window(data: dict[str, Any], dispatched_after: datetime) -> None:
    """Check the window of an event's `account_score` and take it out of `data`: the default
    365 days, up to the end of the minute the worker dispatched the event in."""
    score = data["account_score"]
    start, end = datetime.fromisoformat(score.pop("from")), datetime.fromisoformat(score.pop("to"))
    assert end - start == timedelta(days=365)
    assert minute_end(dispatched_after) <= end <= minute_end(datetime.now(UTC))


async def stored_cases(tenant: Tenant) -> list[Case]:
    async with tenant.db.sessionmaker() as session:
        rows = await session.scalars(
            select(Case).where(Case.workspace_id == tenant.id).order_by(Case.opened_at, Case.id)
        )
        return list(rows)


async def case_responses(tenant: Tenant, case_id: uuid.UUID) -> list[tuple[str, str]]:
    """(response id, rule) of the case's triggering answers, in the order they were added."""
    async with tenant.db.sessionmaker() as session:
        rows = await session.execute(
            select(CaseResponse.response_id, CaseResponse.rule)
            .where(CaseResponse.workspace_id == tenant.id, CaseResponse.case_id == case_id)
            .order_by(CaseResponse.added_at, CaseResponse.response_id)
        )
        return [(str(r), rule) for r, rule in rows]


async def case_events(tenant: Tenant) -> list[Event]:
    return await stored_events(tenant, "case.")


async def stored_events(tenant: Tenant, prefix: str = "") -> list[Event]:
    """The workspace's events whose type starts with `prefix`, in the order they were written."""
    async with tenant.db.sessionmaker() as session:
        rows = await session.scalars(
            select(Event)
            .where(Event.workspace_id == tenant.id, Event.type.startswith(prefix))
            .order_by(Event.seq)
        )
        return list(rows)


async def case_changes(tenant: Tenant, case_id: uuid.UUID) -> list[tuple[str, str, Any]]:
    """(action, changed_by, changes) of the case, in order."""
    async with tenant.db.sessionmaker() as session:
        rows = await session.execute(
            select(CaseChange.action, CaseChange.changed_by, CaseChange.changes)
            .where(CaseChange.workspace_id == tenant.id, CaseChange.case_id == case_id)
            .order_by(CaseChange.seq)
        )
        return [tuple(r) for r in rows]


async def open_case(
    tenant: Tenant,
    stakeholder_id: str,
    score: int,
    *,
    account_id: str = "acme",
    role: str = "other",
    comment: str | None = None,
) -> str:
    """A stakeholder (registered when missing, as a manager in `role`, with their account) who
    answers `score` a minute ago, and the case the worker opens for it; the case's id."""
    async with tenant.db.sessionmaker() as session:
        account = await session.get(Account, (tenant.id, account_id))
        person = await session.get(Stakeholder, (tenant.id, stakeholder_id))
    if account is None:
        await tenant.db.account(account_id)
    if person is None:
        await tenant.db.stakeholder(stakeholder_id, account_id, role=role, job_level="manager")
    [response_id] = await tenant.db.respond(
        stakeholder_id, (score, ago(minutes=1)), comment=comment
    )
    await announce(tenant, response_id)
    await run_worker(tenant)
    async with tenant.db.sessionmaker() as session:
        case_id = await session.scalar(
            select(CaseResponse.case_id).where(
                CaseResponse.workspace_id == tenant.id,
                CaseResponse.response_id == uuid.UUID(response_id),
            )
        )
    assert case_id is not None, "no case rule matched the answer"
    return str(case_id)


async def set_case(
    tenant: Tenant,
    case_id: str,
    *,
    opened_at: datetime,
    first_action_at: datetime | None = None,
    closed_at: datetime | None = None,
    due_at: datetime | None = None,
) -> None:
    """Move a case (and its triggering answers, to opened_at) in time; with closed_at, close it
    as resolved. For the metrics, whose figures are all about these instants."""
    values: dict[str, Any] = {
        "opened_at": opened_at,
        "first_action_at": first_action_at,
        "closed_at": closed_at,
        "due_at": due_at or opened_at + timedelta(hours=48),
    }
    if closed_at is not None:
        values |= {"status": "closed", "outcome": "resolved"}
    async with session_scope(tenant.db.sessionmaker) as session:
        await session.execute(
            update(Case)
            .where(Case.workspace_id == tenant.id, Case.id == uuid.UUID(case_id))
            .values(**values)
        )
        triggers = select(CaseResponse.response_id).where(
            CaseResponse.workspace_id == tenant.id, CaseResponse.case_id == uuid.UUID(case_id)
        )
        await session.execute(
            update(SurveyResponse)
            .where(SurveyResponse.workspace_id == tenant.id, SurveyResponse.id.in_(triggers))
            .values(submitted_at=opened_at)
        )
