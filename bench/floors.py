"""The floor the hardware sets, measured with asyncpg on the benchmark's own database.

Each dashboard query's answer computed by one plain SQL aggregate over the raw `responses` rows
(no service, no ORM, no HTTP), and a COPY of the stored rows into an unindexed scratch table.
"""

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.scoring import PASSIVE_MIN, PROMOTER_MIN

YEAR = timedelta(days=365)

COUNTS = (
    f"count(*) FILTER (WHERE score >= {PROMOTER_MIN}) AS promoters, "
    f"count(*) FILTER (WHERE score >= {PASSIVE_MIN} AND score < {PROMOTER_MIN}) AS passives, "
    f"count(*) FILTER (WHERE score < {PASSIVE_MIN}) AS detractors"
)
CANDIDATES = "workspace_id = $1 AND NOT excluded AND submitted_at >= $2 AND submitted_at < $3"
LATEST_ORDER = "submitted_at DESC, created_at DESC, id DESC"
MONTH = "date_trunc('month', submitted_at AT TIME ZONE 'UTC')"


def _latest(columns: str, extra: str = "") -> str:
    """latest_per_stakeholder: each stakeholder's latest candidate in the window, once."""
    return (
        f"SELECT DISTINCT ON (stakeholder_id) {columns} FROM responses "
        f"WHERE {CANDIDATES}{extra} ORDER BY stakeholder_id, {LATEST_ORDER}"
    )


_RATED = ("support", "product", "onboarding")
_X = [f"(attributes->>'{k}')::float8" for k in _RATED]
_Z = ["score::float8", *_X]
DRIVER_MOMENTS = (
    "SELECT account_id, count(*), "
    + ", ".join(f"sum({a})" for a in _Z)
    + ", "
    + ", ".join(f"sum({a} * {b})" for i, a in enumerate(_Z) for b in _Z[i:])
    + f" FROM ({_latest('score, account_id, attributes')}) t WHERE "
    + " AND ".join(f"jsonb_typeof(attributes->'{k}') = 'number'" for k in _RATED)
    + " GROUP BY account_id"
)

SQL = {
    "nps_365d": f"SELECT {COUNTS} FROM ({_latest('score')}) t",
    "by_role": f"SELECT role, {COUNTS} FROM ({_latest('score, role')}) t GROUP BY role",
    "by_account": (
        f"SELECT account_id, {COUNTS} FROM ({_latest('score, account_id')}) t GROUP BY account_id"
    ),
    # One account: each stakeholder's latest answer in the window, kept when it was given at
    # this account (the API's answer: someone who moved on counts at the account they answered
    # for last). Only people with an answer at the account in the window can qualify.
    "account": (
        f"SELECT role, job_level, department, {COUNTS} FROM ("
        + _latest(
            "score, account_id, role, job_level, lower(btrim(department)) AS department",
            f" AND stakeholder_id IN (SELECT stakeholder_id FROM responses WHERE {CANDIDATES}"
            " AND account_id = $4)",
        )
        + ") t WHERE account_id = $4 GROUP BY role, job_level, department"
    ),
    "trend_monthly_2y": (
        f"SELECT month, {COUNTS} FROM ("
        f"SELECT DISTINCT ON ({MONTH}, stakeholder_id) {MONTH} AS month, score "
        f"FROM responses WHERE {CANDIDATES} "
        f"ORDER BY {MONTH}, stakeholder_id, {LATEST_ORDER}) t GROUP BY month ORDER BY month"
    ),
    # The account's score over the current and the previous 365 days ($4 splits them).
    "at_risk": (
        f"SELECT account_id, current, {COUNTS} FROM ("
        "SELECT DISTINCT ON (submitted_at >= $4, stakeholder_id) "
        "account_id, submitted_at >= $4 AS current, score "
        f"FROM responses WHERE {CANDIDATES} "
        f"ORDER BY submitted_at >= $4, stakeholder_id, {LATEST_ORDER}) t "
        "GROUP BY account_id, current"
    ),
    # Accounts heard from in the window, and those whose decision makers answered.
    "coverage": (
        "SELECT count(*) AS accounts, count(r.account_id) AS heard_from, "
        "count(*) FILTER (WHERE r.decision_maker) AS decision_maker_heard "
        "FROM accounts a LEFT JOIN ("
        "SELECT account_id, bool_or(role = 'decision_maker') AS decision_maker "
        f"FROM responses WHERE {CANDIDATES} GROUP BY account_id"
        ") r ON r.account_id = a.id WHERE a.workspace_id = $1"
    ),
    # Key drivers: the moments per account (sums of y, x and their products) over the latest
    # answers that rate all three attributes the data set has, which is what the API gathers.
    "drivers": DRIVER_MOMENTS,
    "drivers_shapley": DRIVER_MOMENTS,
    # Themes: each category's answers whose lower-cased comment has the word (one theme; the
    # API folds accents and runs one expression per theme).
    "themes": (
        f"SELECT {COUNTS}, count(*) FILTER (WHERE lower(comment) ~ '\\msupport\\M') "
        f"FROM ({_latest('score, comment')}) t"
    ),
    # Suggested themes: the words of the comments per category (no bigrams, no folding).
    "themes_suggested": (
        "SELECT word, count(*) FILTER (WHERE score < 7), count(*) FILTER (WHERE score >= 9) "
        f"FROM ({_latest('score, comment')}) t, "
        "regexp_split_to_table(lower(comment), '[^[:alnum:]]+') AS word "
        "WHERE comment IS NOT NULL GROUP BY word"
    ),
}


def arguments(
    name: str, workspace_id: uuid.UUID, end: datetime, account_id: str | None = None
) -> tuple[Any, ...]:
    """The query's parameters for the window the API uses by default, ending at `end`."""
    if name == "account":
        return (workspace_id, end - YEAR, end, account_id)
    if name == "trend_monthly_2y":
        return (workspace_id, end - 2 * YEAR, end)
    if name == "at_risk":
        return (workspace_id, end - 2 * YEAR, end, end - YEAR)
    return (workspace_id, end - YEAR, end)


@dataclass(frozen=True, slots=True)
class Floor:
    samples_ms: list[float]
    rows: int  # rows in the last answer


async def time_queries(
    conn: Any,
    workspace_id: uuid.UUID,
    *,
    end: datetime,
    account_for: Callable[[int], str],
    warmups: int,
    repeats: int,
    budget: float,
    min_samples: int,
) -> dict[str, Floor]:
    """Each floor query `repeats` times after `warmups`, sequentially, in milliseconds; one that
    has used `budget` seconds stops once it has `min_samples`."""
    floors: dict[str, Floor] = {}
    for name, sql in SQL.items():
        samples: list[float] = []
        rows: Sequence[Any] = []
        deadline = time.perf_counter() + budget
        for i in range(warmups + repeats):
            if len(samples) >= min_samples and time.perf_counter() > deadline:
                break
            args = arguments(name, workspace_id, end, account_for(i))
            began = time.perf_counter()
            rows = await conn.fetch(sql, *args)
            elapsed = (time.perf_counter() - began) * 1000
            if i >= warmups:
                samples.append(elapsed)
        floors[name] = Floor(samples, len(rows))
    return floors


Counts = tuple[int, int, int]


async def answer(
    conn: Any, name: str, workspace_id: uuid.UUID, end: datetime, account_id: str | None = None
) -> dict[str, Counts]:
    """The floor's category counts for `name`, keyed by its group ("" for the total)."""
    rows = await conn.fetch(SQL[name], *arguments(name, workspace_id, end, account_id))
    out: dict[str, Counts] = {}
    for row in rows:
        key = "" if len(row) == 3 else "|".join(str(v) for v in list(row.values())[:-3])
        counts = (row["promoters"], row["passives"], row["detractors"])
        previous = out.get(key, (0, 0, 0))
        out[key] = (previous[0] + counts[0], previous[1] + counts[1], previous[2] + counts[2])
    return out


@dataclass(frozen=True, slots=True)
class CopyFloor:
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


async def copy_rows(conn: Any, workspace_id: uuid.UUID, *, chunk: int = 50_000) -> CopyFloor:
    """COPY the workspace's stored responses into an unindexed scratch table; only COPY is timed.

    The rows are read back in chunks (untimed), so the floor writes exactly what the API stored.
    """
    await conn.execute("DROP TABLE IF EXISTS bench_copy")
    await conn.execute("CREATE TABLE bench_copy (LIKE responses INCLUDING DEFAULTS)")
    rows = 0
    seconds = 0.0
    after = uuid.UUID(int=0)
    try:
        while True:
            records = await conn.fetch(
                "SELECT * FROM responses WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                workspace_id,
                after,
                chunk,
            )
            if not records:
                break
            columns = list(records[0].keys())
            began = time.perf_counter()
            await conn.copy_records_to_table("bench_copy", records=records, columns=columns)
            seconds += time.perf_counter() - began
            rows += len(records)
            after = records[-1]["id"]
    finally:
        await conn.execute("DROP TABLE IF EXISTS bench_copy")
    return CopyFloor(rows, seconds)
