"""Each stakeholder's counted answers form a chain: an answer's superseded_at is when the next
one was submitted ('infinity' for the latest). An answer is then its stakeholder's latest in a
window [from, to) exactly when from <= submitted_at < to <= superseded_at, so scores under
latest_per_stakeholder read those rows from an index instead of sorting every answer.

The chain follows the order every score uses (submitted_at, created_at, id) over non-excluded
answers. It is relinked in the transaction that stores, excludes or includes an answer, so it is
always in step with the rows; `chain_defects` recomputes it from scratch to prove that.
"""

import uuid
from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import DateTime, String

from app.sql import ANSWER_ORDER, ANSWER_ORDER_SQL

_ORDER_OF_R = ", ".join(f"r.{column}" for column in ANSWER_ORDER)

# Relinking a stakeholder reads their chain and writes it back: two transactions doing that at
# once would each miss the other's new answer. A transaction-scoped lock per stakeholder,
# taken in sorted order so concurrent batches cannot deadlock, serialises them; the relink
# statement that follows sees everything committed before the lock was granted.
_LOCK = text(
    """
    SELECT count(pg_advisory_xact_lock(hashtextextended('chain:' || :workspace || ':' || s, 0)))
    FROM (SELECT DISTINCT s FROM unnest(CAST(:stakeholders AS text[])) AS s ORDER BY s) AS sorted
    """
).bindparams(bindparam("stakeholders", type_=ARRAY(String)))

# Only the answers from the one before the earliest new (or changed) answer onward can change
# their link: exactly those whose superseded_at is at or after that answer's submitted_at.
# LATERAL walks the stakeholder index once per stakeholder whatever the statistics say (a table
# filling up before its first ANALYZE otherwise gets a plan that rescans it per row).
_CHANGED = text(
    f"""
    SELECT id, next FROM (
        SELECT r.id, r.superseded_at,
               coalesce(lead(r.submitted_at) OVER (
                   PARTITION BY r.stakeholder_id ORDER BY {_ORDER_OF_R}
               ), 'infinity') AS next
        FROM unnest(CAST(:stakeholders AS text[]), CAST(:since AS timestamptz[]))
             AS touched (stakeholder_id, since)
        CROSS JOIN LATERAL (
            SELECT id, stakeholder_id, submitted_at, created_at, superseded_at
            FROM responses
            WHERE workspace_id = :workspace_id AND stakeholder_id = touched.stakeholder_id
              AND superseded_at >= touched.since AND NOT excluded
        ) AS r
    ) AS chain
    WHERE superseded_at <> next
    """
).bindparams(
    bindparam("stakeholders", type_=ARRAY(String)),
    bindparam("since", type_=ARRAY(DateTime(timezone=True))),
)

# By primary key with = ANY, so the rows are found by index whatever the statistics say.
_UPDATE = text(
    """
    UPDATE responses AS r SET superseded_at = v.next
    FROM unnest(CAST(:ids AS uuid[]), CAST(:nexts AS timestamptz[])) AS v (id, next)
    WHERE r.workspace_id = :workspace_id AND r.id = ANY(CAST(:ids AS uuid[])) AND r.id = v.id
    """
).bindparams(
    bindparam("ids", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("nexts", type_=ARRAY(DateTime(timezone=True))),
)


async def lock_chains(
    session: AsyncSession, workspace_id: uuid.UUID, stakeholders: Collection[str]
) -> None:
    """Take the stakeholders' chain locks (until the transaction ends), in sorted order.

    A writer that changes answers in place (exclusion, deletion) takes them before it touches a
    row, so it cannot hold a row a relink needs while waiting for that relink's lock.
    """
    if stakeholders:
        await session.execute(
            _LOCK, {"workspace": str(workspace_id), "stakeholders": sorted(stakeholders)}
        )


async def relink(
    session: AsyncSession, workspace_id: uuid.UUID, since: Mapping[str, datetime]
) -> None:
    """Relink each stakeholder's chain from their earliest new or changed answer onward."""
    if not since:
        return
    stakeholders = sorted(since)
    await lock_chains(session, workspace_id, stakeholders)
    changed = (
        await session.execute(
            _CHANGED,
            {
                "workspace_id": workspace_id,
                "stakeholders": stakeholders,
                "since": [since[s] for s in stakeholders],
            },
        )
    ).all()
    if changed:
        await session.execute(
            _UPDATE,
            {
                "workspace_id": workspace_id,
                "ids": [row.id for row in changed],
                "nexts": [row.next for row in changed],
            },
        )


_DEFECTS = text(
    f"""
    SELECT count(*) FROM (
        SELECT superseded_at,
               coalesce(lead(submitted_at) OVER (
                   PARTITION BY stakeholder_id ORDER BY {ANSWER_ORDER_SQL}
               ), 'infinity') AS next
        FROM responses WHERE workspace_id = :workspace_id AND NOT excluded
    ) AS chain
    WHERE superseded_at <> next
    """
)


async def chain_defects(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    """How many counted answers link to anything but their true successor (0 when in step)."""
    return int((await session.execute(_DEFECTS, {"workspace_id": workspace_id})).scalar_one())
