"""`python -m bench.flood`: legitimate writes beside a flood of wrong API keys.

The service runs as in production (bench.service) on a scratch database. `--clients` clients
record responses with POST /v1/responses for `--seconds`, alone and then beside `--flood`
clients sending random wrong keys as fast as they are answered, all from 127.0.0.1. It prints
the legitimate calls' latency in both phases and what the flood got (401s, 429s), as JSON.
Target (issue 11): the flood raises the legitimate p99 by less than 2x.
"""

import argparse
import asyncio
import json
import secrets
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.client import Pool
from bench.load import create_workspace
from bench.report import summary
from bench.service import (
    database_server,
    nps,
    running_service,
    scratch_database,
    service_env,
    wait_ready,
)

STAKEHOLDERS = 200


async def _setup(base_url: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with Pool(base_url, headers=headers, size=4, timeout=60) as pool:
        r = await pool.request("PUT", "/v1/accounts/acme", content=b'{"name": "Acme"}')
        assert r.status_code in (200, 201), r.text
        for i in range(STAKEHOLDERS):
            body = json.dumps({"account_id": "acme", "role": "user"}).encode()
            r = await pool.request("PUT", f"/v1/stakeholders/p{i}", content=body)
            assert r.status_code in (200, 201), r.text


async def _legitimate(base_url: str, key: str, clients: int, seconds: float) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds

    async def client(pool: Pool, n: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            body = {"stakeholder_id": f"p{(n * 7 + i) % STAKEHOLDERS}", "score": i % 11}
            started = time.perf_counter()
            r = await pool.request("POST", "/v1/responses", content=json.dumps(body).encode())
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[r.status_code] += 1
            i += 1

    async with Pool(base_url, headers=headers, size=clients, timeout=60) as pool:
        await asyncio.gather(*(client(pool, n) for n in range(clients)))
    return {
        "latency_ms": summary(latencies),
        "per_second": round(len(latencies) / seconds),
        "statuses": dict(statuses),
    }


async def _flood(base_url: str, clients: int, stop: asyncio.Event) -> Counter[int]:
    statuses: Counter[int] = Counter()

    async def client(pool: Pool) -> None:
        while not stop.is_set():
            wrong = {"Authorization": f"Bearer nps_{secrets.token_urlsafe(32)}"}
            r = await pool.request("GET", "/v1/settings", headers=wrong)
            statuses[r.status_code] += 1

    async with Pool(base_url, size=clients, timeout=60) as pool:
        await asyncio.gather(*(client(pool) for _ in range(clients)))
    return statuses


async def _phases(base_url: str, key: str, args: argparse.Namespace) -> dict[str, Any]:
    await _setup(base_url, key)
    await _legitimate(base_url, key, args.clients, 3)  # warm-up
    alone = await _legitimate(base_url, key, args.clients, args.seconds)
    stop = asyncio.Event()
    flood = asyncio.create_task(_flood(base_url, args.flood, stop))
    await asyncio.sleep(1)
    beside = await _legitimate(base_url, key, args.clients, args.seconds)
    stop.set()
    flooded = await flood
    ratio = beside["latency_ms"]["p99_ms"] / alone["latency_ms"]["p99_ms"]
    return {
        "alone": alone,
        "beside_flood": beside,
        "flood_statuses": dict(flooded),
        "p99_ratio": round(ratio, 2),
        "target_met": ratio < 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__)
    parser.add_argument("--clients", type=int, default=32, help="legitimate clients")
    parser.add_argument("--flood", type=int, default=100, help="clients sending wrong keys")
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--workers", type=int, default=2, help="web processes")
    parser.add_argument("--log", type=Path, default=Path(".data/bench/flood.log"))
    args = parser.parse_args()
    with (
        database_server(keep=False) as (server_url, _),
        scratch_database(server_url, keep=False) as database_url,
    ):
        env = service_env(database_url)
        nps(["migrate"], env)
        key = create_workspace("flood", env)
        with running_service(database_url, args.workers, args.log) as service:
            asyncio.run(wait_ready(service))
            report = asyncio.run(_phases(service.base_url, key, args))
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
