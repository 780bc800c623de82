"""Cold and settled plans: the dashboard queries right after the bulk load, before the table
has been vacuumed and analysed by anyone but the service itself, and again after VACUUM
ANALYZE (issue 12: the first within 2x of the second).

Each call asks for a window of its own (its end moves by a millisecond a call), so neither
the report cache nor a tag serves it: every figure is a computation. The floor's plain SQL is
timed beside the settled figures only: before the table is analysed its planner takes the
one-account floor's semi-join for a table of one row, a nested loop over the window's answers
squared (over a minute at 100,000 answers), which says nothing about the service.
"""

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench import BenchError, floors
from bench.load import Workspace, api_client
from bench.report import summary
from bench.service import Service

DASHBOARD = ("nps_365d", "by_role", "by_account", "account", "trend_monthly_2y")


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def uncached_call(name: str, account_id: str, end: datetime) -> tuple[str, dict[str, str]]:
    """The dashboard query over an explicit window ending at `end` (a new query each call)."""
    year = {"from": _stamp(end - floors.YEAR), "to": _stamp(end)}
    if name == "nps_365d":
        return "/v1/nps", year
    if name == "by_role":
        return "/v1/nps", year | {"group_by": "role"}
    if name == "by_account":
        return "/v1/nps", year | {"group_by": "account"}
    if name == "account":
        return f"/v1/accounts/{account_id}/nps", year
    return "/v1/nps/trend", {"interval": "month", "from": _stamp(end - 2 * floors.YEAR)}


async def _time(
    client: httpx.AsyncClient,
    conn: Any | None,
    workspace: Workspace,
    accounts: list[str],
    repeats: int,
) -> dict[str, Any]:
    """Each dashboard query through the API (and as the floor's SQL, with `conn`)."""
    out: dict[str, Any] = {}
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    step = 0
    for name in DASHBOARD:
        api: list[float] = []
        floor: list[float] = []
        for i in range(1 + repeats):  # one warm-up each
            step += 1
            end = base - timedelta(milliseconds=step)
            account = accounts[i % len(accounts)]
            path, params = uncached_call(name, account, end)
            began = time.perf_counter()
            response = await client.get(path, params=params)
            elapsed = (time.perf_counter() - began) * 1000
            if response.status_code != 200:
                raise BenchError(f"{name}: {response.status_code} {response.text[:300]}")
            if i:
                api.append(elapsed)
            if conn is not None:
                sql_args = floors.arguments(name, workspace.id, end, account)
                began = time.perf_counter()
                await conn.fetch(floors.SQL[name], *sql_args)
                if i:
                    floor.append((time.perf_counter() - began) * 1000)
        out[name] = {"api": summary(api)} | ({"floor": summary(floor)} if floor else {})
    return out


async def plans_phase(
    args: argparse.Namespace, service: Service, conn: Any, workspace: Workspace
) -> dict[str, Any]:
    """The dashboard queries cold (right after the load) and settled (after VACUUM ANALYZE)."""
    rng = random.Random(f"{args.seed}/plans")
    accounts = [rng.choice(workspace.world.accounts).id for _ in range(args.repeats)]
    # The bench runs no worker during the load: what its periodic statistics.refresh would have
    # done within 30 s of the load's end (app.services.statistics).
    refreshed = list(await conn.fetchval("SELECT refresh_statistics()"))
    stats = await conn.fetchrow(
        "SELECT last_analyze, last_vacuum, n_mod_since_analyze FROM pg_stat_user_tables "
        "WHERE relname = 'responses'"
    )
    async with api_client(service.base_url, workspace.key, 1) as client:
        cold = await _time(client, None, workspace, accounts, args.repeats)
        await conn.execute("VACUUM (ANALYZE) responses")
        await conn.execute("ANALYZE accounts")
        await conn.execute("ANALYZE stakeholders")
        settled = await _time(client, conn, workspace, accounts, args.repeats)
    ratios = {
        name: (cold[name]["api"]["p50_ms"] or 0) / (settled[name]["api"]["p50_ms"] or 1)
        for name in DASHBOARD
    }
    return {
        "before": {
            "analysed_at": stats["last_analyze"] and stats["last_analyze"].isoformat(),
            "vacuumed_at": stats["last_vacuum"] and stats["last_vacuum"].isoformat(),
            "changed_since_analysis": stats["n_mod_since_analyze"],
            "refreshed": refreshed,
        },
        "cold": cold,
        "settled": settled,
        "cold_over_settled": ratios,
    }
