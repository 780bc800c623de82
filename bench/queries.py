"""The dashboard queries through the API, timed, and their answers checked against the floor.

A query phase (at the checkpoint and at the end): VACUUM ANALYZE, each query `--repeats` times
after warm-ups through the API, the same answers as plain SQL (`bench.floors`), then the API's
counts against the floor's over one explicit window.
"""

import argparse
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from bench import BenchError, floors
from bench.load import Workspace, api_client, stored_count
from bench.memory import RssSampler
from bench.report import summary
from bench.service import Service

WARMUPS = 3
MIN_SAMPLES = 5
QUERY_NAMES = (
    "nps_365d",
    "by_role",
    "by_account",
    "account",
    "trend_monthly_2y",
    "at_risk",
    "coverage",
    "drivers",
    "drivers_shapley",
    "themes",
    "themes_suggested",
)
# The themes the bench workspace counts (GET /v1/themes): words of bench.data's comments.
BENCH_THEMES = {
    "pricing": ["pricing", "price", "expensive"],
    "support": ["support"],
    "onboarding": ["onboarding"],
    "reporting": ["reporting", "reports"],
}


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Query:
    name: str
    outcome: str = "ok"  # ok, n/a (the endpoint does not exist yet) or error
    samples_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    detail: str | None = None
    # The service's RSS, summed over its processes, when these calls began and at its highest
    # during them (bench.memory.RssSampler.window).
    rss_mb: dict[str, float] | None = None

    def report(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "statuses": dict(self.statuses),
            "detail": self.detail,
            "rss_mb": self.rss_mb,
            **summary(self.samples_ms),
        }


def query_call(name: str, account_id: str, now: datetime) -> tuple[str, dict[str, str]]:
    if name == "nps_365d":
        return "/v1/nps", {}
    if name == "by_role":
        return "/v1/nps", {"group_by": "role"}
    if name == "by_account":
        return "/v1/nps", {"group_by": "account"}
    if name == "account":
        return f"/v1/accounts/{account_id}/nps", {}
    if name == "trend_monthly_2y":
        return "/v1/nps/trend", {"interval": "month", "from": _stamp(now - 2 * floors.YEAR)}
    if name == "at_risk":
        return "/v1/accounts/at-risk", {}
    if name == "drivers":
        return "/v1/drivers", {}
    if name == "drivers_shapley":
        return "/v1/drivers", {"driver_method": "shapley"}
    if name == "themes":
        return "/v1/themes", {}
    if name == "themes_suggested":
        return "/v1/themes/suggested", {}
    return "/v1/coverage", {}


async def time_api_queries(
    client: httpx.AsyncClient,
    account_for: Callable[[int], str],
    repeats: int,
    budget: float,
    sampler: RssSampler | None = None,
) -> dict[str, Query]:
    """Each dashboard call `repeats` times after warm-ups, one after another, default windows;
    with a sampler, the service's peak RSS during each query's calls."""
    out: dict[str, Query] = {}
    for name in QUERY_NAMES:
        window: AbstractContextManager[dict[str, float]] = (
            sampler.window() if sampler is not None else nullcontext({})
        )
        with window as memory:
            query = await _time_api_query(client, account_for, repeats, budget, name)
        query.rss_mb = memory or None
        out[name] = query
    return out


async def _time_api_query(
    client: httpx.AsyncClient,
    account_for: Callable[[int], str],
    repeats: int,
    budget: float,
    name: str,
) -> Query:
    query = Query(name)
    deadline = time.perf_counter() + budget
    for i in range(WARMUPS + repeats):
        if len(query.samples_ms) >= MIN_SAMPLES and time.perf_counter() > deadline:
            break
        path, params = query_call(name, account_for(i), datetime.now(UTC))
        began = time.perf_counter()
        response = await client.get(path, params=params)
        elapsed = (time.perf_counter() - began) * 1000
        query.statuses[str(response.status_code)] += 1
        if i == 0 and response.status_code in (404, 405):
            query.outcome = "n/a"
            query.detail = f"{response.status_code} {response.text[:200]}"
            break
        if response.status_code != 200:
            query.outcome = "error"
            query.detail = query.detail or f"{response.status_code} {response.text[:300]}"
        if i >= WARMUPS:
            query.samples_ms.append(elapsed)
    return query


def _api_counts(score: dict[str, Any]) -> floors.Counts:
    return (score["promoters"], score["passives"], score["detractors"])


async def verify_answers(
    client: httpx.AsyncClient,
    conn: Any,
    workspace_id: uuid.UUID,
    end: datetime,
    account_id: str,
    available: dict[str, Query],
) -> dict[str, str]:
    """The API's counts against the floor's over one explicit window (untimed): a fast wrong
    answer is no result."""
    window = {"from": _stamp(end - floors.YEAR), "to": _stamp(end)}
    checks: dict[str, str] = {}
    for name, path, params, group in (
        ("nps_365d", "/v1/nps", {}, None),
        ("by_role", "/v1/nps", {"group_by": "role"}, "role"),
        ("by_account", "/v1/nps", {"group_by": "account"}, "account_id"),
        ("account", f"/v1/accounts/{account_id}/nps", {}, None),
    ):
        if available[name].outcome != "ok":
            checks[name] = "skipped"
            continue
        response = await client.get(path, params=window | params)
        if response.status_code != 200:
            checks[name] = f"error: {response.status_code}"
            continue
        body = response.json()
        floor = await floors.answer(conn, name, workspace_id, end, account_id)
        expected: Any
        got: Any
        if group is None:
            expected = [sum(c[k] for c in floor.values()) for k in range(3)]
            got = list(_api_counts(body["score"]))
        else:
            expected = {k: list(v) for k, v in floor.items()}
            got = {str(g["key"][group]): list(_api_counts(g["score"])) for g in body["groups"]}
        checks[name] = "match" if got == expected else f"MISMATCH: api {got} floor {expected}"
    return checks


async def query_phase(
    args: argparse.Namespace,
    service: Service,
    conn: Any,
    workspace: Workspace,
    sampler: RssSampler | None = None,
) -> dict[str, Any]:
    """The query set through the API, the same answers as plain SQL, and a cross-check."""
    workspace_id, account_ids = workspace.id, [a.id for a in workspace.world.accounts]
    if not args.no_vacuum:
        await conn.execute("VACUUM (ANALYZE) responses")
        await conn.execute("ANALYZE accounts")
        await conn.execute("ANALYZE stakeholders")
    now = datetime.now(UTC)
    end = now.replace(microsecond=now.microsecond // 1000 * 1000)
    rng = random.Random(f"{args.seed}/queries")
    sequence = [rng.choice(account_ids) for _ in range(WARMUPS + args.repeats)]

    def account_for(i: int) -> str:
        return sequence[i]

    async with api_client(service.base_url, workspace.key, 1) as client:
        themes = await client.patch(
            "/v1/settings",
            json={"themes": BENCH_THEMES},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        if themes.status_code != 200:
            raise BenchError(f"setting the bench themes: {themes.status_code} {themes.text}")
        api = await time_api_queries(client, account_for, args.repeats, args.query_budget, sampler)
        floor = await floors.time_queries(
            conn,
            workspace_id,
            end=end,
            account_for=account_for,
            warmups=WARMUPS,
            repeats=args.repeats,
            budget=args.query_budget,
            min_samples=MIN_SAMPLES,
        )
        checks = await verify_answers(client, conn, workspace_id, end, sequence[0], api)
    return {
        "responses": await stored_count(conn, workspace_id),
        "api": {name: q.report() for name, q in api.items()},
        "floor": {name: summary(f.samples_ms) | {"rows": f.rows} for name, f in floor.items()},
        "verified": checks,
    }
