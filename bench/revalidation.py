"""The revalidation phase: dashboards polling reports that have not changed (issue 12).

`--revalidation-clients` clients (32) send `If-None-Match` with the tags they hold for
`--revalidation-seconds` as fast as they can (the rate), then for half as long at an offered
`--revalidation-rate` (the latency of a poll while the service has room), round-robin over the
dashboard's queries (workspace score, by role,
by account, one account, the monthly two-year trend), each with an explicit window so the tags
stay current for the whole phase. It reports the 304s' p50/p99 and their rate, and checks that
a report served from the cache is the body a fresh computation gives: the same query spelt
differently (another tag, so computed afresh) must answer byte for byte the same body.
`--revalidation-seconds 0` skips the phase.
"""

import argparse
import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from bench.client import ConnectionLost, Pool
from bench.load import Workspace
from bench.queries import query_call
from bench.report import summary
from bench.service import Service

QUERIES = ("nps_365d", "by_role", "by_account", "account", "trend_monthly_2y")


def _stamp(at: datetime, spelling: str) -> str:
    text = at.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if spelling == "Z" else text


def polled_urls(workspace: Workspace, now: datetime, spelling: str = "Z") -> list[str]:
    """The dashboard's queries with their window named, `to` spelt with `Z` or `+00:00`."""
    account_id = workspace.world.accounts[0].id
    urls = []
    for name in QUERIES:
        path, query = query_call(name, account_id, now)
        window = {"to": _stamp(now, spelling)}
        urls.append(f"{path}?{urlencode({**query, **window})}")
    return urls


async def revalidation_phase(
    args: argparse.Namespace, service: Service, workspace: Workspace
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {workspace.key}"}
    now = datetime.now(UTC).replace(microsecond=0)
    urls = polled_urls(workspace, now)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    timeout = args.revalidation_seconds + 30
    async with Pool(
        service.base_url, headers=headers, size=args.revalidation_clients, timeout=timeout
    ) as pool:
        first = [await pool.get(url) for url in urls]
        tags = [r.headers.get("etag", "") for r in first]
        cached = [await pool.get(url) for url in urls]
        fresh = [await pool.get(url) for url in polled_urls(workspace, now, "+00:00")]
        checks = {
            name: "match"
            if a.status_code == b.status_code == c.status_code == 200
            and a.content == b.content == c.content
            else f"MISMATCH ({a.status_code}/{b.status_code}/{c.status_code})"
            for name, a, b, c in zip(QUERIES, first, cached, fresh, strict=True)
        }
        deadline = time.monotonic() + args.revalidation_seconds

        async def poller(n: int) -> None:
            i = n
            while time.monotonic() < deadline:
                k = i % len(urls)
                started = time.perf_counter()
                try:
                    r = await pool.request("GET", urls[k], headers={"If-None-Match": tags[k]})
                except (ConnectionLost, OSError) as exc:
                    statuses[type(exc).__name__] += 1
                else:
                    statuses[str(r.status_code)] += 1
                    if r.status_code == 304:
                        latencies.append((time.perf_counter() - started) * 1000)
                    elif r.status_code == 200:  # changed: a dashboard keeps the new tag
                        tags[k] = r.headers.get("etag", "")
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(poller(n) for n in range(args.revalidation_clients)))
        elapsed = time.perf_counter() - started
        paced = await _paced(args, pool, urls, tags)
    return {
        "clients": args.revalidation_clients,
        "seconds": elapsed,
        "statuses": dict(statuses),
        "not_modified_per_s": len(latencies) / elapsed if elapsed else None,
        "latency": summary(latencies),
        "paced": paced,
        "cached_equals_fresh": checks,
    }


async def _paced(
    args: argparse.Namespace, pool: Pool, urls: list[str], tags: list[str]
) -> dict[str, Any]:
    """The same clients polling at an offered rate (`--revalidation-rate` a second in all,
    each client on its own schedule) instead of as fast as they can: the latency of one poll
    while the service has room, which the saturated part (a queue of 32 by design) cannot
    show."""
    rate = args.revalidation_rate
    clients = args.revalidation_clients
    seconds = max(args.revalidation_seconds / 2, 1.0)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    every = clients / rate
    begin = time.monotonic()

    async def poller(n: int) -> None:
        due = begin + every * n / clients  # spread over the first period
        i = n
        while due < begin + seconds:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            k = i % len(urls)
            started = time.perf_counter()
            try:
                r = await pool.request("GET", urls[k], headers={"If-None-Match": tags[k]})
            except (ConnectionLost, OSError) as exc:
                statuses[type(exc).__name__] += 1
            else:
                statuses[str(r.status_code)] += 1
                if r.status_code == 304:
                    latencies.append((time.perf_counter() - started) * 1000)
            i += 1
            due += every

    await asyncio.gather(*(poller(n) for n in range(clients)))
    elapsed = time.monotonic() - begin
    return {
        "offered_per_s": rate,
        "seconds": elapsed,
        "statuses": dict(statuses),
        "not_modified_per_s": len(latencies) / elapsed if elapsed else None,
        "latency": summary(latencies),
    }
