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
import asyncio
import json
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks import Webhook

from bench import BenchError, cpu, data
from bench.client import Client
from bench.load import Load, Workspace, load_client, post_batches, run_workers, send
from bench.receiver import SECRET
from bench.report import Phases, summary
from bench.service import BIN, Service, free_port, service_env, stop_service

HOOK_PATH, FLOOR_PATH = "/hooks", "/floor"
BATCH = 1000


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    try:
        subprocess.run(command, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BenchError(
            f"the webhook phase makes its receiver's certificate with openssl, which failed "
            f"({exc}): install openssl, or skip the phase with --webhook-events 0"
        ) from exc
    return cert, key


@contextmanager
def started(command: list[str], env: dict[str, str], log: Path) -> Iterator[int]:
    """A process of its own (its output appended to `log`) while the block runs; its pid."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process.pid
    finally:
        stop_service(process)


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise BenchError(f"gave up after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


def delivery_bound(events: int) -> float:
    """How long to wait for `events` deliveries before calling them lost (10 events/s at worst)."""
    return 120 + events / 10


def batches(bodies: list[bytes]) -> list[tuple[int, bytes]]:
    chunks = [bodies[i : i + BATCH] for i in range(0, len(bodies), BATCH)]
    return [(len(c), b'{"responses":[' + b",".join(c) + b"]}") for c in chunks]


def external_ids(bodies: list[bytes]) -> set[str]:
    return {json.loads(body)["external_id"] for body in bodies}


class Rig:
    """The worker, the receiver and the queries the phase waits on."""

    def __init__(
        self,
        conn: Any,
        database_url: str,
        cert: Path,
        key: Path,
        log: Path,
        concurrency: int | None = None,
    ) -> None:
        self.conn, self.cert, self.key, self.log = conn, cert, key, log
        self.env = service_env(
            database_url, NPS_WEBHOOKS_ALLOW_PRIVATE="true", SSL_CERT_FILE=str(cert)
        )
        if concurrency is not None:
            self.env["NPS_WORKER_CONCURRENCY"] = str(concurrency)
        self.tls = ssl.create_default_context(cafile=str(cert))
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.client = httpx.AsyncClient(base_url=self.url, verify=self.tls, timeout=30)

    def worker(self) -> Any:
        return started([str(BIN / "nps"), "worker"], self.env, self.log)

    def receiver(self, secret: str) -> Any:
        command = [sys.executable, "-m", "bench.receiver", f"--port={self.port}"]
        command += [f"--cert={self.cert}", f"--key={self.key}"]
        return started(command, {**self.env, SECRET: secret}, self.log)

    async def worker_connected(self) -> bool:
        found = await self.conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'nps-worker'"
        )
        return bool(found)

    async def queue_idle(self) -> bool:
        due = await self.conn.fetchval(
            "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running') AND run_at <= now()"
        )
        return bool(due == 0)

    async def receiver_ready(self) -> bool:
        try:
            await self.client.get("/stats")
        except httpx.TransportError:
            return False
        return True

    async def arrivals(self) -> dict[str, dict[str, Any]]:
        """What the worker delivered, by external_id: first arrival and count."""
        found = (await self.client.get("/arrivals", params={"path": HOOK_PATH})).json()
        return {a["external_id"]: a for a in found}

    async def distinct(self) -> int:
        """How many distinct events the worker has delivered."""
        stats = (await self.client.get("/stats")).json().get(HOOK_PATH, {})
        return int(stats.get("distinct", 0))

    async def received(self, count: int) -> None:
        """Wait until `count` distinct events have arrived; a BenchError if they do not."""

        async def enough() -> bool:
            return await self.distinct() >= count

        try:
            await until(enough, f"{count:,} distinct events at the receiver", delivery_bound(count))
        except BenchError as exc:
            raise BenchError(f"{exc}: {await self.distinct():,} arrived, the rest lost") from None


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
                    await post_timed(service, workspace, bodies["without"], args, without)
                    await until(rig.queue_idle, "the queue to empty", delivery_bound(n))
                secret = await register(service, workspace, f"{rig.url}{HOOK_PATH}")
                stack.enter_context(rig.receiver(secret))
                await until(rig.receiver_ready, "the receiver to start", 30)
                with_ = Load("hooks-with")
                with phases(f"webhooks: {n:,} single responses, a webhook subscribed"):
                    began = time.time()
                    answered = await post_timed(service, workspace, bodies["with"], args, with_)
                    await rig.received(len(answered))
                    await until(rig.queue_idle, "the queue to empty", 120)
            out["ingest_without"] = without.report("requests")
            out["ingest_with"] = with_.report("requests")
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
