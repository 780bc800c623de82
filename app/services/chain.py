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

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import driver
from app.sql import ANSWER_ORDER, ANSWER_ORDER_SQL

# The answers' order over the responses table aliased `r`, for statements that walk or probe a
# chain (here and app.services.import_merge).
ORDER_OF_R = ", ".join(f"r.{column}" for column in ANSWER_ORDER)
_ORDER_OF_N = ", ".join(f"n.{column}" for column in ANSWER_ORDER)
_DESCENDING_N = ", ".join(f"n.{column} DESC" for column in ANSWER_ORDER)


# Relinking a stakeholder reads their chain and writes it back: two transactions doing that at
# once would each miss the other's new answer. A transaction-scoped lock per stakeholder,
# taken in sorted order so concurrent batches cannot deadlock, serialises them; the relink
# statement that follows sees everything committed before the lock was granted (a statement
# that took the lock itself would read with a snapshot from before it waited).
# These run on the driver (app.db.driver): every answer recorded relinks its stakeholder.
def lock_sql(workspace: str, stakeholder: str) -> str:
    """The SQL that takes one stakeholder's chain lock, given SQL for the workspace id (text)
    and for the stakeholder id: the one formula of the lock's key."""
    key = f"'chain:' || {workspace} || ':' || {stakeholder}"
    return f"pg_advisory_xact_lock(hashtextextended({key}, 0))"


_LOCK = f"""
    SELECT count({lock_sql("$1", "s")})
    FROM (SELECT DISTINCT s FROM unnest($2::text[]) AS s ORDER BY s) AS sorted
"""

# Only the answers from the one before the earliest new (or changed) answer onward can change
# their link: exactly those whose superseded_at is at or after that answer's submitted_at.
# LATERAL walks the stakeholder index once per stakeholder whatever the statistics say (a table
# filling up before its first ANALYZE otherwise gets a plan that rescans it per row). The
# links that changed are written by the same statement, by primary key.
_RELINK = f"""
    WITH chain AS (
        SELECT r.id, r.superseded_at,
               coalesce(lead(r.submitted_at) OVER (
                   PARTITION BY r.stakeholder_id ORDER BY {ORDER_OF_R}
               ), 'infinity') AS next
        FROM unnest($2::text[], $3::timestamptz[]) AS touched (stakeholder_id, since)
        CROSS JOIN LATERAL (
            SELECT id, stakeholder_id, submitted_at, created_at, superseded_at
            FROM responses
            WHERE workspace_id = $1 AND stakeholder_id = touched.stakeholder_id
              AND superseded_at >= touched.since AND NOT excluded
            OFFSET 0  -- a simple subquery is otherwise pulled up into one join over them all
        ) AS r
    ), changed AS (
        SELECT id, next FROM chain WHERE superseded_at <> next
    )
    UPDATE responses AS r SET superseded_at = changed.next
    FROM changed
    WHERE r.workspace_id = $1 AND r.id = ANY(ARRAY(SELECT id FROM changed)) AND r.id = changed.id
"""


# A new answer linked in the statement that inserts it (the single-answer path; a batch inserts,
# then relinks). With the stakeholder's chain lock held since an earlier statement, exactly two
# links change: the new answer's own, which is the submitted_at of the first counted answer
# after it ('infinity' if none), and its predecessor's, which becomes the new submitted_at.
# Both neighbours have superseded_at >= the new submitted_at (the predecessor's successor comes
# after the new answer), so the stakeholder index finds them. The new row's created_at is the
# transaction's now(), as the INSERT's default gives it. Given SQL for the workspace id, the
# stakeholder, the new submitted_at and id, and the CTE holding the inserted row: a CTE
# `neighbours` (to come first), the new superseded_at, and a CTE `linked` relinking the
# predecessor once the row is in.
def link_new_sql(
    workspace: str, stakeholder: str, submitted: str, new_id: str, stored: str
) -> tuple[str, str, str]:
    key = f"({submitted}, now(), {new_id})"
    order = f"({_ORDER_OF_N})"
    neighbours = f"""
    neighbours AS (
        SELECT id, submitted_at, created_at FROM responses
        WHERE workspace_id = {workspace} AND stakeholder_id = {stakeholder}
          AND superseded_at >= {submitted} AND NOT excluded
    )"""
    superseded = f"""coalesce((
        SELECT n.submitted_at FROM neighbours AS n WHERE {order} > {key}
        ORDER BY {_ORDER_OF_N} LIMIT 1
    ), 'infinity')"""
    linked = f"""
    linked AS (
        UPDATE responses AS r SET superseded_at = {submitted}
        WHERE r.workspace_id = {workspace} AND EXISTS (SELECT FROM {stored})
          AND r.id = (
              SELECT n.id FROM neighbours AS n WHERE {order} < {key}
              ORDER BY {_DESCENDING_N} LIMIT 1
          )
          AND r.superseded_at <> {submitted}
        RETURNING r.id
    )"""
    return neighbours, superseded, linked


async def lock_chains(
    session: AsyncSession, workspace_id: uuid.UUID, stakeholders: Collection[str]
) -> None:
    """Take the stakeholders' chain locks (until the transaction ends), in sorted order.

    A writer that changes answers in place (exclusion, deletion) takes them before it touches a
    row, so it cannot hold a row a relink needs while waiting for that relink's lock.
    """
    if stakeholders:
        conn = await driver(session)
        await conn.fetchval(_LOCK, str(workspace_id), sorted(stakeholders))


async def relink(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    since: Mapping[str, datetime],
    *,
    locked: bool = False,
) -> None:
    """Relink each stakeholder's chain from their earliest new or changed answer onward
    (`locked`: the caller took their chain locks already, in an earlier statement)."""
    if not since:
        return
    stakeholders = sorted(since)
    if not locked:
        await lock_chains(session, workspace_id, stakeholders)
    conn = await driver(session)
    await conn.execute(_RELINK, workspace_id, stakeholders, [since[s] for s in stakeholders])


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
