"""Storing response rows: one INSERT of fixed shape for a single answer or a batch."""

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import driver
from app.services import events
from app.services.chain import link_new_sql

# One statement of fixed shape for any number of rows: the columns go in as arrays, so the
# statement is prepared once, not compiled and planned anew for each batch size. Run on the
# driver (app.db.driver): every answer takes this path.
_INSERT = """
    INSERT INTO responses (workspace_id, id, external_id, stakeholder_id, account_id, role,
                           job_level, department, score, comment, submitted_at, survey, channel,
                           attributes)
    SELECT $1, r.* FROM unnest(
        $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
        $9::smallint[], $10::text[], $11::timestamptz[], $12::text[], $13::text[],
        $14::text[]::jsonb[]
    ) AS r
    ON CONFLICT (workspace_id, external_id) DO NOTHING
    RETURNING id, created_at
"""
# The columns of a stored answer as every insert path writes them (import staging too).
ANSWER_COLUMNS = (
    "id",
    "external_id",
    "stakeholder_id",
    "account_id",
    "role",
    "job_level",
    "department",
    "score",
    "comment",
    "submitted_at",
    "survey",
    "channel",
)


async def insert_rows(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> dict[uuid.UUID, datetime]:
    """Insert rows, skipping any whose external_id is already stored: the ids that went in,
    with the time they were recorded."""
    columns = [[row[name] for row in rows] for name in ANSWER_COLUMNS]
    attributes = [json.dumps(row["attributes"]) for row in rows]
    conn = await driver(session)
    stored = await conn.fetch(_INSERT, rows[0]["workspace_id"], *columns, attributes)
    return {row["id"]: row["created_at"] for row in stored}


_NEIGHBOURS, _SUPERSEDED, _LINKED = link_new_sql("$1", "$4", "$11", "$2", "stored")
_EMIT_FROM = 15  # events.emitting's four parameters follow the row's fourteen


@dataclass(frozen=True, slots=True)
class Companion:
    """Another write that goes with one answer, in its statement and only when the row went in
    (an invitation marked answered by it, the Idempotency-Key's record of the answer). `sql(first)`
    is a data-modifying statement, run as a CTE, that may use $1 (the workspace), the CTE `stored`
    (the new row's id) and its own parameters from `$first` on, given as `args`; it returns a
    row when it did its part. The statement is prepared once per combination of `name`s;
    `done`, if given, is called once the companion did its part."""

    name: str
    sql: Callable[[int], str]
    args: tuple[Any, ...]
    done: Callable[[], None] | None = None


class CompanionRefused(Exception):
    """The answer's row went in but a companion did not do its part (its condition no longer
    held): the caller raises, so that the transaction, and the row, roll back. `name` says
    which companion."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _store_one(companions: tuple[tuple[Callable[[int], str], int], ...]) -> str:
    first = _EMIT_FROM + 4
    ctes, flags = [], []
    for number, (sql, arity) in enumerate(companions):
        ctes.append(f"companion_{number} AS ({sql(first)})")
        flags.append(f"EXISTS (SELECT FROM companion_{number}) AS companion_{number}")
        first += arity
    written = "".join(f"{cte}, " for cte in ctes)
    reported = "".join(f", {flag}" for flag in flags)
    return f"""
    WITH {_NEIGHBOURS}, stored AS (
        INSERT INTO responses (workspace_id, id, external_id, stakeholder_id, account_id, role,
                               job_level, department, score, comment, submitted_at, survey,
                               channel, attributes, superseded_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text::jsonb,
                {_SUPERSEDED})
        ON CONFLICT (workspace_id, external_id) DO NOTHING
        RETURNING id, created_at
    ), {_LINKED}, {written}
    {events.emitting(_EMIT_FROM, "EXISTS (SELECT FROM stored)")}
    SELECT (SELECT created_at FROM stored) AS created_at{reported}
    """


# One answer in one statement: the row, its place in its stakeholder's chain (the caller holds
# the chain lock), its events and its companions, which happen only when the row went in. Every
# answer recorded one at a time (POST /v1/responses, the public answers) takes this path.
_STATEMENTS: dict[tuple[str, ...], str] = {}


async def store_one(
    session: AsyncSession,
    row: dict[str, Any],
    announced: list[tuple[str, Any]],
    companions: Sequence[Companion] = (),
) -> datetime | None:
    """Insert one row, link it into its stakeholder's chain (whose lock the caller took), emit
    the `announced` events and make the `companions`' writes with it: when it was recorded, or
    None when its external_id is already stored (then nothing is written). CompanionRefused
    when the row went in and a companion did not do its part."""
    _, emit = events.emit_args(announced)
    names = tuple(c.name for c in companions)
    sql = _STATEMENTS.get(names)
    if sql is None:
        sql = _STATEMENTS.setdefault(
            names, _store_one(tuple((c.sql, len(c.args)) for c in companions))
        )
    extra = [arg for companion in companions for arg in companion.args]
    conn = await driver(session)
    columns = [row[name] for name in ANSWER_COLUMNS]
    stored = await conn.fetchrow(
        sql, row["workspace_id"], *columns, json.dumps(row["attributes"]), *emit, *extra
    )
    recorded: datetime | None = stored["created_at"]
    if recorded is None:
        return None
    for number, companion in enumerate(companions):
        if not stored[f"companion_{number}"]:
            raise CompanionRefused(companion.name)
    for companion in companions:
        if companion.done is not None:
            companion.done()
    return recorded
