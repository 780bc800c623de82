"""The statement that looks a request's caller up, and what rides on it.

Every request with a credential starts with one statement that finds its API key
(live_api_key) or invitation token (invitation_holder) and sets the transaction's workspace.
Work a request would otherwise give a round trip of its own is done in that statement instead:

- its process's rate-limit counts, added to rate_limit_windows (app.local_limits.Flush), at
  most once per flush interval;
- a public call's CORS question (app.local_limits.OriginCheck);
- a `Rider`: a LATERAL join on the caller's row `k` (its `workspace_id` and `id`), such as the
  Idempotency-Key's lock and record (app.api.idempotency), which needs the caller's workspace
  and so could only run after the look-up.

`caller_lookup` builds the statement for the parts present; each shape is built once, so that the
driver prepares it once per connection. Its parameters are, in order: the look-up's own ($1),
the origin, the rider's, the flush's.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from app.local_limits import Flush, OriginCheck, upsert_counts
from app.services.rate_limits import ORIGIN_ALLOWED_SQL


@dataclass(slots=True)
class Rider:
    """A LATERAL join on the look-up's row `k` that the look-up's statement also runs: `sql(n)`
    with its parameters numbered from `$n`, the `columns` it adds to the row, its `args`. After
    the statement, `row` is the statement's row (None: the statement did not run with it)."""

    name: str  # one name per shape of `sql` (statements are cached by it)
    sql: Callable[[int], str]
    columns: str
    args: tuple[Any, ...]
    row: Any = field(default=None)


_COUNTED = """
    WITH counted AS ({upsert}
    ), totals AS (
        SELECT array_agg(key) AS keys, array_agg(window_start) AS starts, array_agg(hits) AS hits
        FROM counted
    )
    SELECT {columns}, t.keys, t.starts, t.hits
    FROM totals AS t
    LEFT JOIN LATERAL {lookup} AS k ON true
    {joins}
"""


@cache
def caller_lookup(
    lookup: str,
    columns: str,
    *,
    origin: bool = False,
    rider: tuple[str, Callable[[int], str], str, int] | None = None,
    flush: bool = False,
) -> str:
    """`SELECT columns FROM lookup AS k` (a set-returning function of the credential, `$1`),
    with the parts asked for. With any part, a caller the look-up does not find still gets a
    row, of NULLs but for the parts' columns."""
    n = 2
    if origin:
        allowed = ORIGIN_ALLOWED_SQL.format(origin=f"${n}::text", token_hash="$1")
        columns += f", {allowed} AS allowed"
        n += 1
    joins = ""
    if rider is not None:
        _, sql, rider_columns, arity = rider
        joins = sql(n)
        columns += f", {rider_columns}"
        n += arity
    if flush:
        keys, starts, hits = (f"${n + i}" for i in range(3))
        upsert = upsert_counts(keys, starts, hits)
        return _COUNTED.format(upsert=upsert, columns=columns, lookup=lookup, joins=joins)
    if origin or rider is not None:
        return (
            f"SELECT {columns} FROM (SELECT) AS one LEFT JOIN LATERAL {lookup} AS k ON true {joins}"
        )
    return f"SELECT {columns} FROM {lookup} AS k"


async def run_lookup(
    conn: Any,
    lookup: str,
    columns: str,
    credential: Any,
    *,
    session: Any,
    flush: Flush | None = None,
    origin: OriginCheck | None = None,
    rider: Rider | None = None,
) -> Any:
    """Run the caller's look-up with its parts on `conn` (the driver of `session`'s
    transaction): its row, or None when there is no part and no caller. The parts learn their
    answers: the flush its totals, the origin whether it is allowed, the rider its row."""
    sql = caller_lookup(
        lookup,
        columns,
        origin=origin is not None,
        rider=None if rider is None else (rider.name, rider.sql, rider.columns, len(rider.args)),
        flush=flush is not None,
    )
    args: list[Any] = [credential]
    if origin is not None:
        args.append(origin.origin)
    if rider is not None:
        args += rider.args
    if flush is not None:
        args += flush.rows()
    row = await conn.fetchrow(sql, *args)
    if flush is not None:
        flush.applied_row(row, session)
    if origin is not None:
        origin.allowed = bool(row["allowed"])
    if rider is not None:
        rider.row = row
    return row
