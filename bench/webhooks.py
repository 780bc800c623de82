"""Webhooks: events delivered by the worker to a local HTTPS receiver, what a subscribed webhook
adds to an answer's latency, and the outbox draining a backlog of pending events.

The service runs in production mode, so a webhook must be https: the phase makes a throwaway
certificate for 127.0.0.1 with `openssl`, the receiver (bench.receiver, a process of its own)
serves it, and the worker (`nps worker`, started and stopped here, with
NPS_WEBHOOKS_ALLOW_PRIVATE=true) trusts it through SSL_CERT_FILE. The earlier phases ran without
a worker, so their queued jobs (a dispatch per stored answer) are deleted first: the worker starts
from an empty queue, as a service whose worker keeps up would have it.

1. `--webhook-requests` single POST /v1/responses with the worker running and no webhook, then as
   many with a webhook subscribed to `response.created`: p50/p99 of both, and for the second each
   event's time from its answer to its arrival and the events/s delivered end to end.
2. The worker stopped, `--webhook-events` answers posted in batches (as many events pending), the
   worker started: time to drain, deliveries/s, the worker's and the database's CPU per delivery,
   and every event counted at the receiver by webhook-id: none may be lost, none come twice.
3. The floor: those events signed and POSTed one after another over one keep-alive TLS
   connection, straight to the receiver.
"""

import argparse
import json
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from bench import BenchError, cpu, data
from bench.client import Client
from bench.load import Load, Workspace, load_client, post_batches, run_workers, send
from bench.report import Phases, summary
from bench.service import Service
from bench.webhook_rig import HOOK_PATH, Rig, certificate, delivery_bound, until

FLOOR_PATH = "/floor"
BATCH = 1000


def batches(bodies: list[bytes]) -> list[tuple[int, bytes]]:
    chunks = [bodies[i : i + BATCH] for i in range(0, len(bodies), BATCH)]
    return [(len(c), b'{"responses":[' + b",".join(c) + b"]}") for c in chunks]


def external_ids(bodies: list[bytes]) -> set[str]:
    return {json.loads(body)["external_id"] for body in bodies}


async def post_timed(
    service: Service,
    workspace: Workspace,
    bodies: list[bytes],
    args: argparse.Namespace,
    load: Load,
) -> dict[str, float]:
    """POST /v1/responses one at a time from `--single-clients` clients; when each answer came
    back (Unix seconds), by external_id."""
    answered: dict[str, float] = {}
    clients = args.single_clients
    async with load_client(service.base_url, workspace.key, clients) as client:

        async def post(job: tuple[int, bytes]) -> None:
            number, body = job
            idempotency_key = f"bench-{load.label}-{number}"
            reply = await send(client, "POST", "/v1/responses", body, load, idempotency_key)
            load.requests += 1
            load.items += 1
            if reply is not None and reply.status_code == 201:
                load.stored += 1
                answered[reply.json()["external_id"]] = time.time()
            else:
                load.failed += 1
                load.note(f"{number}: {reply.status_code if reply else None}")

        load.seconds = await run_workers(clients, enumerate(bodies), post)
    if load.failed:
        raise BenchError(f"{load.label}: {load.failed} answers failed: {load.problems[:5]}")
    return answered


async def register(service: Service, workspace: Workspace, url: str) -> str:
    """A webhook for `response.created` to the receiver; its secret."""
    async with load_client(service.base_url, workspace.key, 1) as admin:
        body = {"url": url, "events": ["response.created"], "description": "bench"}
        made = await admin.request("POST", "/v1/webhooks", content=data.dumps(body))
    if made.status_code != 201:
        raise BenchError(f"POST /v1/webhooks: {made.status_code} {made.text}")
    secret: str = made.json()["secret"]
    return secret


async def drain(
    args: argparse.Namespace, service: Service, workspace: Workspace, rig: Rig, before: int
) -> dict[str, Any]:
    """`--webhook-events` answers posted with the worker stopped, then the worker on them."""
    bodies = data.single_bodies(
        workspace.world,
        f"{workspace.seed}/drain",
        count=args.webhook_events,
        end=datetime.now(UTC),
        prefix="hooks-drain-",
    )
    load = Load("hooks-drain")
    await post_batches(service.base_url, workspace.key, batches(bodies), args.clients, load)
    if load.stored != len(bodies):
        raise BenchError(f"the drain's answers: {load.stored} stored of {len(bodies)}")
    pending = await rig.conn.fetchval(
        "SELECT count(*) FROM jobs WHERE workspace_id = $1 AND task = 'events.dispatch' "
        "AND status = 'queued'",
        workspace.id,
    )
    began = time.time()
    with rig.worker() as pid:
        # CPU from the worker's first connection on, so its start-up (imports) is not counted.
        await until(rig.worker_connected, "the worker to start", 60)
        early = await rig.distinct()
        async with cpu.measuring(pid, rig.conn) as used:
            await rig.received(before + len(bodies))
            await until(rig.queue_idle, "the queue to empty", 120)
        seconds = time.time() - began
    used.requests = before + len(bodies) - early
    arrived = await rig.arrivals()
    mine = [arrived[e] for e in external_ids(bodies) if e in arrived]
    first, last = min(a["at"] for a in mine), max(a["at"] for a in mine)
    return {
        "events": len(bodies),
        "pending": pending,
        "seconds": seconds,
        "first_delivery_s": first - began,
        "deliveries_per_s": len(mine) / (last - first) if last > first else None,
        "lost": len(bodies) - len(mine),
        "twice": sum(a["count"] - 1 for a in mine),
        "cpu": used.report(),
    }


async def floor(rig: Rig, workspace: Workspace, secret: str, count: int) -> dict[str, Any]:
    """The drain's events signed and POSTed one at a time over one keep-alive TLS connection."""
    rows = await rig.conn.fetch(
        "SELECT id, type, occurred_at, data FROM events WHERE workspace_id = $1 "
        "AND type = 'response.created' ORDER BY occurred_at DESC, id LIMIT $2",
        workspace.id,
        count,
    )
    hook, client = Webhook(secret), Client(rig.url, tls=rig.tls)
    began = time.perf_counter()
    for row in rows:
        event = {"type": row["type"], "timestamp": row["occurred_at"].isoformat()}
        body = json.dumps(event | {"data": json.loads(row["data"])}, separators=(",", ":"))
        now, msg_id = datetime.now(UTC), str(row["id"])
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": hook.sign(msg_id, now, body),
        }
        reply = await client.request("POST", FLOOR_PATH, body.encode(), headers)
        if reply.status_code != 204:
            raise BenchError(f"the receiver answered the floor's POST {reply.status_code}")
    seconds = time.perf_counter() - began
    await client.close()
    return {"events": len(rows), "seconds": seconds, "deliveries_per_s": len(rows) / seconds}


async def webhook_phase(
    args: argparse.Namespace,
    service: Service,
    conn: Any,
    workspace: Workspace,
    database_url: str,
    phases: Phases,
    log: Path,
) -> dict[str, Any]:
    """Ingest without and with a webhook, delivery end to end, the drain, and the floor."""
    n = args.webhook_requests
    out: dict[str, Any] = {
        "requests": n,
        "events": args.webhook_events,
        "worker_concurrency": args.worker_concurrency,
    }
    with phases("webhooks: set aside the earlier phases' queued jobs"):
        deleted = await conn.execute("DELETE FROM jobs WHERE status = 'queued'")
        out["jobs_set_aside"] = int(deleted.split()[-1])
        if not args.no_vacuum:
            await conn.execute("VACUUM (ANALYZE) jobs")
    bodies = {
        part: data.single_bodies(
            workspace.world,
            f"{workspace.seed}/{part}",
            count=n,
            end=datetime.now(UTC),
            prefix=f"hooks-{part}-",
        )
        for part in ("without", "with")
    }
    with tempfile.TemporaryDirectory(prefix="nps-bench-") as tmp, ExitStack() as stack:
        rig = Rig(conn, database_url, *certificate(Path(tmp)), log, args.worker_concurrency)
        try:
            with rig.worker():
                await until(rig.worker_connected, "the worker to start", 60)
                without = Load("hooks-without")
                with phases(f"webhooks: {n:,} single responses, no webhook"):
                    async with cpu.measuring(service.process.pid, conn) as used_without:
                        await post_timed(service, workspace, bodies["without"], args, without)
                    await until(rig.queue_idle, "the queue to empty", delivery_bound(n))
                secret = await register(service, workspace, f"{rig.url}{HOOK_PATH}")
                stack.enter_context(rig.receiver(secret))
                await until(rig.receiver_ready, "the receiver to start", 30)
                with_ = Load("hooks-with")
                with phases(f"webhooks: {n:,} single responses, a webhook subscribed"):
                    began = time.time()
                    async with cpu.measuring(service.process.pid, conn) as used_with:
                        answered = await post_timed(service, workspace, bodies["with"], args, with_)
                    await rig.received(len(answered))
                    await until(rig.queue_idle, "the queue to empty", 120)
            # The API's CPU per answer (the database's would count the worker's work too).
            for load, used, key in ((without, used_without, "without"), (with_, used_with, "with")):
                used.requests = load.requests
                out[f"ingest_{key}"] = load.report("requests") | {"cpu": used.report()}
            out["end_to_end"] = end_to_end(answered, await rig.arrivals(), began)
            if args.webhook_events:
                with phases(f"webhooks: the outbox draining {args.webhook_events:,} events"):
                    out["drain"] = await drain(args, service, workspace, rig, len(answered))
                with phases("floor: the drain's events POSTed straight to the receiver"):
                    out["floor"] = await floor(rig, workspace, secret, args.webhook_events)
        finally:
            await rig.client.aclose()
    return out


def end_to_end(
    answered: dict[str, float], arrived: dict[str, dict[str, Any]], began: float
) -> dict[str, Any]:
    """Each event's time from its answer to its arrival, and the events/s delivered."""
    mine = {e: arrived[e] for e in answered if e in arrived}
    delays = [(mine[e]["at"] - at) * 1000 for e, at in answered.items() if e in mine]
    last = max((a["at"] for a in mine.values()), default=began)
    return {
        "events": len(answered),
        "delivered": len(mine),
        "events_per_s": len(mine) / (last - began) if last > began else None,
        "delay": summary(delays),
        "twice": sum(a["count"] - 1 for a in mine.values()),
    }
