"""Domain events, written in the transaction of the change they announce (a transactional outbox).

`emit` stores each event and queues its dispatch job in one statement on the caller's session, so
an event commits or vanishes with its change and a committed one is never lost. The worker runs
`events.dispatch` (app.outbox), which hands the event to every subscriber of its type (webhook
deliveries, follow-up cases). Nothing here delivers anything inline.

`data` is what a receiver needs (ids, figures, the role snapshot) and never more personal data
than the stored rows hold; it must be JSON-ready (ids and instants as strings).
"""

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import driver
from app.errors import rfc3339
from app.jobs import TASKS
from app.models import SurveyResponse
from app.scoring import classify

# Every event type a subscriber (or a webhook endpoint) can ask for.
EVENT_TYPES = (
    "response.created",
    "response.excluded",
    "response.included",
    "response.corrected",
    "stakeholder.moved",
    "account.risk_changed",
    "case.opened",
    "case.updated",
    "case.closed",
    "invitation.answered",
    "webhook.test",
    "webhook.disabled",
)

DISPATCH_TASK = "events.dispatch"


# Any number of events as two data-modifying CTEs (`emitted`, `queued`): their rows, and one
# dispatch job per event. `$1` is the workspace id and `$first`..`$first+3` are emit_args(), so
# another statement can carry them (recording an answer stores it and its events in one);
# `when`, a condition on that statement's other CTEs, emits only if it holds.
def emitting(first: int, when: str = "true") -> str:
    rows, task, attempts, lease = (f"${first + i}" for i in range(4))
    return f"""
    emitted AS (
        INSERT INTO events (workspace_id, id, type, data)
        SELECT $1::uuid, e.id, e.type, e.data
        FROM jsonb_to_recordset({rows}::jsonb) AS e(id uuid, type text, data jsonb)
        WHERE {when}
        ON CONFLICT (id) DO NOTHING
        RETURNING id
    ), queued AS (
        INSERT INTO jobs (task, payload, workspace_id, max_attempts, lease_seconds)
        SELECT {task}::text, jsonb_build_object('event_id', emitted.id), $1::uuid,
               {attempts}::int, {lease}::int
        FROM emitted
        RETURNING 1
    )"""


# Run on the driver (app.db.driver), as every batch of answers emits through it.
_EMIT = f"WITH {emitting(2)} SELECT count(*) FROM queued"


# The ids of events that announce something at most once (emit_once), derived from what they
# announce; any fixed UUID would do, this one must just never change.
_ONCE = uuid.UUID("6f1d9c3e-8b47-4e0a-9a52-3c7d1e5b2f84")


class UnknownEventType(ValueError):
    """A programming error: an event type missing from EVENT_TYPES."""


async def emit_many(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    events: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    ids: Sequence[uuid.UUID] | None = None,
) -> list[uuid.UUID]:
    """Store each (type, data) event and queue its dispatch, in the session's transaction; the
    events' ids (their webhook-ids), in order. An id given that is stored already writes
    nothing, not even a dispatch job. Never commits."""
    if not events:
        return []
    emitted, args = emit_args(events, ids)
    await (await driver(session)).execute(_EMIT, workspace_id, *args)
    return emitted


def emit_args(
    events: Sequence[tuple[str, Mapping[str, Any]]], ids: Sequence[uuid.UUID] | None = None
) -> tuple[list[uuid.UUID], list[Any]]:
    """The events' ids (their webhook-ids: `ids`, else new ones), in order, and the four
    parameters of emitting(): the rows as JSON and how their dispatch jobs are run."""
    unknown = sorted({kind for kind, _ in events} - set(EVENT_TYPES))
    if unknown:
        raise UnknownEventType(f"undeclared event types: {unknown}")
    chosen = list(ids) if ids is not None else [uuid.uuid4() for _ in events]
    rows = [
        {"id": str(event_id), "type": kind, "data": to_jsonable_python(dict(data))}
        for event_id, (kind, data) in zip(chosen, events, strict=True)
    ]
    dispatch = TASKS.tasks[DISPATCH_TASK]
    lease = max(1, int(dispatch.lease.total_seconds()))
    return chosen, [json.dumps(rows), DISPATCH_TASK, dispatch.max_attempts, lease]


async def emit(
    session: AsyncSession, workspace_id: uuid.UUID, type: str, data: Mapping[str, Any]
) -> uuid.UUID:
    """Store one event and queue its dispatch in the session's transaction; its id."""
    [event_id] = await emit_many(session, workspace_id, [(type, data)])
    return event_id


async def emit_once(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    type: str,
    data: Mapping[str, Any],
    *,
    key: str,
) -> uuid.UUID:
    """Emit an event that announces `key` (what happened, e.g. a response's id) at most once:
    its id is derived from the workspace, the type and the key, so a subscriber run again by
    a repeated dispatch job writes nothing more (while the first event is kept). Its id."""
    event_id = uuid.uuid5(_ONCE, f"{workspace_id}:{type}:{key}")
    await emit_many(session, workspace_id, [(type, data)], ids=[event_id])
    return event_id


# An erasure reaches the events too: every event that names an erased stakeholder or a deleted
# account anywhere in its data (a response's, a case's, a movement, the evidence of an at-risk
# change) is deleted, and with it its webhook deliveries and their attempts (ON DELETE
# CASCADE), so nothing still queued sends it and no replay or log shows it. Erasures are rare:
# they scan the workspace's events (kept NPS_EVENT_RETENTION_DAYS) rather than cost every
# event an index entry on the ingest path.
_FORGET = text("""
    DELETE FROM events AS e
    WHERE e.workspace_id = :workspace_id
      AND ((CAST(:account_id AS text) IS NOT NULL
            AND jsonb_path_exists(e.data, 'strict $.**.account_id ? (@ == $id)',
                                  jsonb_build_object('id', CAST(:account_id AS text))))
           OR EXISTS (SELECT FROM jsonb_path_query(e.data, 'strict $.**.stakeholder_id') AS n(id)
                      WHERE n.id #>> '{}' = ANY(CAST(:stakeholder_ids AS text[]))))
""")


async def forget(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    stakeholder_ids: Sequence[str] = (),
    account_id: str | None = None,
) -> int:
    """Delete the events that name any of `stakeholder_ids` or `account_id`; how many went."""
    result = await session.execute(
        _FORGET,
        {
            "workspace_id": workspace_id,
            "account_id": account_id,
            "stakeholder_ids": list(stakeholder_ids),
        },
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


_RESPONSE_FIELDS = (
    "external_id",
    "stakeholder_id",
    "account_id",
    "score",
    "survey",
    "channel",
    "role",
    "job_level",
    "department",
)


def response_data(response: SurveyResponse | Mapping[str, Any]) -> dict[str, Any]:
    """A response (a row or the values ingest stores) as its events carry it: ids, the score
    and its category, where and when it was given, and the role snapshot; never the comment or
    the driver ratings."""
    names = ("id", "submitted_at", *_RESPONSE_FIELDS)
    values = (
        response
        if isinstance(response, Mapping)
        else {name: getattr(response, name) for name in names}
    )
    return {
        "response_id": str(values["id"]),
        **{name: values[name] for name in _RESPONSE_FIELDS},
        "category": classify(values["score"]).value,
        "submitted_at": rfc3339(values["submitted_at"]),
    }


# Correctable fields whose new value an event may carry (the comment and the ratings are named,
# never copied).
_FIGURES = ("score", "submitted_at")


async def response_corrected(
    session: AsyncSession,
    response: SurveyResponse,
    revision: int,
    changes: Mapping[str, Mapping[str, Any]],
) -> list[uuid.UUID]:
    """The events of one correction (`changes` as its revision keeps them): `response.excluded`
    or `response.included` when `excluded` flipped, `response.corrected` when anything else
    changed (its fields named, the figures with from and to); both in one statement."""
    base = {**response_data(response), "revision": revision}
    emitted: list[tuple[str, Mapping[str, Any]]] = []
    if "excluded" in changes:
        kind = "response.excluded" if response.excluded else "response.included"
        emitted.append((kind, {**base, "reason": response.excluded_reason}))
    corrected = sorted(set(changes) - {"excluded", "excluded_reason"})
    if corrected:
        figures = {name: dict(changes[name]) for name in _FIGURES if name in changes}
        emitted.append(("response.corrected", {**base, "fields": corrected, "changes": figures}))
    return await emit_many(session, response.workspace_id, emitted)
