"""The overload phase: `--overload-readers` clients (300 by default) send heavy reads as fast as
they are answered for `--overload-seconds`, while `--overload-writers` clients post single
answers and one client asks for /healthz every 50 ms. It reports the writes' and the probe's
p50/p99 beside their targets (issue 11: writes p99 < 1 s, /healthz p99 < 100 ms), and what the
reads got: how many were served, how many were told 503 busy (/problems/busy, the honest answer
of a full service), and any other status.

The reads are a dashboard's heaviest: weekly two-year trends (in total and by role), a quarterly
two-year trend and a two-year score by account, and long pages of movements. (A weekly two-year
trend of every account is over the 20,000-point cap of a trend: its 422 is cheap, not heavy.)
`--overload-seconds 0` skips the phase.
"""

import argparse
import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from bench.client import ConnectionLost, Pool
from bench.load import Workspace
from bench.report import summary
from bench.service import Service

HEALTH_EVERY_SECONDS = 0.05
BUSY = "/problems/busy"


def heavy_reads(now: datetime) -> list[str]:
    start = (now - timedelta(days=730)).isoformat(timespec="seconds").replace("+00:00", "Z")
    two_years = {"from": start}
    calls = [
        ("/v1/nps/trend", {**two_years, "interval": "week"}),
        ("/v1/nps/trend", {**two_years, "interval": "week", "group_by": "role"}),
        ("/v1/nps/trend", {**two_years, "interval": "quarter", "group_by": "account"}),
        ("/v1/nps", {**two_years, "group_by": "account"}),
        ("/v1/movements", {"limit": "200"}),
    ]
    return [f"{path}?{urlencode(query)}" for path, query in calls]


async def overload_phase(
    args: argparse.Namespace, service: Service, workspace: Workspace
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {workspace.key}", "Content-Type": "application/json"}
    reads = heavy_reads(datetime.now(UTC))
    people = [s.id for s in workspace.world.stakeholders]
    read_statuses: Counter[str] = Counter()
    write_statuses: Counter[str] = Counter()
    health_statuses: Counter[str] = Counter()
    writes_ms: list[float] = []
    health_ms: list[float] = []
    busy = 0
    deadline = time.monotonic() + args.overload_seconds

    async def reader(pool: Pool, n: int) -> None:
        nonlocal busy
        i = n
        while time.monotonic() < deadline:
            try:
                r = await pool.get(reads[i % len(reads)])
            except (ConnectionLost, OSError) as exc:
                read_statuses[type(exc).__name__] += 1
            else:
                read_statuses[str(r.status_code)] += 1
                if r.status_code == 503 and BUSY in r.text:
                    busy += 1
                    await asyncio.sleep(0.1)  # a dashboard waits a moment before it polls again
            i += 1

    async def writer(pool: Pool, n: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            body = {"stakeholder_id": people[(n * 7919 + i) % len(people)], "score": i % 11}
            started = time.perf_counter()
            try:
                r = await pool.request("POST", "/v1/responses", content=json.dumps(body).encode())
            except (ConnectionLost, OSError) as exc:
                write_statuses[type(exc).__name__] += 1
            else:
                write_statuses[str(r.status_code)] += 1
            writes_ms.append((time.perf_counter() - started) * 1000)
            i += 1

    async def prober(pool: Pool) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                r = await pool.get("/healthz")
            except (ConnectionLost, OSError) as exc:
                health_statuses[type(exc).__name__] += 1
            else:
                health_statuses[str(r.status_code)] += 1
            health_ms.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(HEALTH_EVERY_SECONDS)

    timeout = args.overload_seconds + 30
    async with (
        Pool(service.base_url, headers=headers, size=args.overload_readers, timeout=timeout) as r,
        Pool(service.base_url, headers=headers, size=args.overload_writers, timeout=timeout) as w,
        Pool(service.base_url, size=1, timeout=timeout) as h,
    ):
        await asyncio.gather(
            *(reader(r, n) for n in range(args.overload_readers)),
            *(writer(w, n) for n in range(args.overload_writers)),
            prober(h),
        )
    return {
        "seconds": args.overload_seconds,
        "readers": args.overload_readers,
        "writers": args.overload_writers,
        "reads": {"statuses": dict(read_statuses), "busy_503": busy},
        "writes": {"statuses": dict(write_statuses), "latency": summary(writes_ms)},
        "healthz": {"statuses": dict(health_statuses), "latency": summary(health_ms)},
    }
