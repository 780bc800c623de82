"""The import phase: one CSV of responses (NPS_BENCH --import-responses, 1,000,000 by default)
uploaded to POST /v1/imports and run by an `nps worker` process of its own, with the worker's
peak RSS sampled and the dashboard queries timed while it runs.

The rows are answers of the main workspace's stakeholders, each with an external_id of its
own, so every row is stored (the run checks that). The rate is stored rows over the worker's
time (the import's started_at to finished_at); the upload is timed apart.
"""

import argparse
import asyncio
import csv
import random
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import BenchError
from bench.load import Workspace
from bench.memory import sampling
from bench.queries import query_call
from bench.report import Phases, summary
from bench.service import BIN, Service, as_service_role, service_env
from bench.webhook_rig import started, until

DASHBOARD = ("nps_365d", "by_role", "account", "trend_monthly_2y")
TARGET_ROWS_PER_S = 25_000


def write_file(path: Path, people: list[str], rows: int, seed: str) -> None:
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(microsecond=0)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["external_id", "stakeholder_id", "score", "comment", "submitted_at"])
        for n in range(rows):
            when = end - timedelta(seconds=rng.randrange(365 * 86400))
            comment = rng.choice(("", "", "", "great support", "=slow onboarding", "ok"))
            writer.writerow(
                [
                    f"imp-{seed}-{n}",
                    rng.choice(people),
                    rng.randrange(11),
                    comment,
                    when.isoformat().replace("+00:00", "Z"),
                ]
            )


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as given:
        while piece := given.read(1 << 20):
            yield piece


async def import_phase(
    args: argparse.Namespace,
    service: Service,
    conn: Any,
    main: Workspace,
    database_url: str,
    phases: Phases,
    log: Path,
) -> dict[str, Any]:
    people = [
        r["id"]
        for r in await conn.fetch("SELECT id FROM stakeholders WHERE workspace_id = $1", main.id)
    ]
    if not people:
        raise BenchError("the import phase needs the main workspace's stakeholders")
    # The earlier phases ran without a worker: their queued jobs (a dispatch per stored answer,
    # unless the webhook phase set them aside already) would run first and time the import
    # behind them, as a service whose worker keeps up would not.
    with phases("import: set aside the earlier phases' queued jobs"):
        deleted = await conn.execute("DELETE FROM jobs WHERE status = 'queued'")
        set_aside = int(deleted.split()[-1])
    headers = {"Authorization": f"Bearer {main.key}"}
    env = as_service_role(database_url, service_env(database_url))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "responses.csv"
        with phases(f"import: write a CSV of {args.import_responses} responses"):
            write_file(path, people, args.import_responses, main.seed)
        size = path.stat().st_size
        async with httpx.AsyncClient(
            base_url=service.base_url, headers=headers, timeout=600
        ) as client:
            with started([str(BIN / "nps"), "worker"], env, log) as pid, sampling(pid) as rss:
                began = time.perf_counter()
                with phases("import: upload"):
                    r = await client.post(
                        "/v1/imports",
                        params={"kind": "responses"},
                        content=_chunks(path),
                        headers={"Content-Type": "text/csv"},
                    )
                if r.status_code != 202:
                    raise BenchError(f"POST /v1/imports: {r.status_code} {r.text[:300]}")
                upload_s = time.perf_counter() - began
                job_id = r.json()["id"]
                latencies: dict[str, list[float]] = {name: [] for name in DASHBOARD}
                job: dict[str, Any] = r.json()

                async def finished() -> bool:
                    nonlocal job
                    job = (await client.get(f"/v1/imports/{job_id}")).json()
                    return job["status"] not in ("queued", "running")

                with phases("import: the worker runs it, dashboard queries timed meanwhile"):
                    i = 0
                    while not await finished():
                        for name in DASHBOARD:
                            call, params = query_call(
                                name, people[i % len(people)], datetime.now(UTC)
                            )
                            t = time.perf_counter()
                            await client.get(call, params=params)
                            latencies[name].append((time.perf_counter() - t) * 1000)
                        i += 1
                        await asyncio.sleep(0.2)
                    await until(finished, "the import", 3600)
    if job["status"] != "succeeded" or job["rows"]["stored"] != args.import_responses:
        raise BenchError(f"the import did not store every row: {job}")
    took = (
        datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])
    ).total_seconds()
    rate = job["rows"]["stored"] / took if took > 0 else None
    return {
        "jobs_set_aside": set_aside,
        "rows": job["rows"],
        "file_mb": size / 2**20,
        "upload_s": upload_s,
        "worker_s": took,
        "rows_per_s": rate,
        "target_rows_per_s": TARGET_ROWS_PER_S,
        "worker_peak_rss_mb": rss.peak_total_kb / 1024,
        "dashboard_during_import": {name: summary(ms) for name, ms in latencies.items()},
    }
