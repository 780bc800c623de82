"""The workspaces loaded through the API: registration, batches, single responses.

Every call is retried with the same Idempotency-Key on a transient failure, every attempt's status
and latency is recorded, and the run stops if any response was not stored exactly once.
"""

import argparse
import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import httpx

from app.embedded import plain_dsn
from bench import BenchError, cpu, data, floors
from bench.client import ConnectionLost, Pool, Reply
from bench.report import Phases, summary
from bench.service import Service, nps, service_env

T = TypeVar("T")

REGISTER_CONCURRENCY = 16
TRANSIENT = {409, 429, 500, 502, 503, 504}
RETRIES = 5
HTTP_TIMEOUT = 300.0


# The workspaces, made with the CLI


@dataclass
class Workspace:
    name: str
    key: str
    id: uuid.UUID
    world: data.World
    responses: int
    seed: str


def create_workspace(name: str, env: dict[str, str]) -> str:
    """A workspace made with `nps create-workspace`; its admin key is the last stdout line."""
    lines = nps(["create-workspace", name], env).strip().splitlines()
    if not lines:
        raise BenchError(f"`nps create-workspace {name}` printed no key")
    return lines[-1].strip()


def _other_sizes(args: argparse.Namespace) -> tuple[int, int, int]:
    accounts = max(1, args.accounts // 10)
    stakeholders = max(accounts, args.stakeholders // 10)
    return accounts, stakeholders, max(1, args.responses // 10)


async def _workspace_ids(database_url: str) -> dict[str, uuid.UUID]:
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        rows = await conn.fetch("SELECT name, id FROM workspaces")
    finally:
        await conn.close()
    return {row["name"]: row["id"] for row in rows}


def setup_workspaces(args: argparse.Namespace, database_url: str) -> list[Workspace]:
    """Migrate, then create the other workspaces and the main one (last) with the CLI."""
    env = service_env(database_url)
    nps(["migrate"], env)
    specs: list[tuple[str, int, int, int, str]] = []
    accounts, stakeholders, responses = _other_sizes(args)
    for k in range(1, args.other_workspaces + 1):
        specs.append((f"bench-other-{k}", accounts, stakeholders, responses, f"{args.seed}-o{k}"))
    specs.append(("bench", args.accounts, args.stakeholders, args.responses, str(args.seed)))
    keys = {name: create_workspace(name, env) for name, *_ in specs}
    ids = asyncio.run(_workspace_ids(database_url))
    return [
        Workspace(
            name,
            keys[name],
            ids[name],
            data.build_world(seed, accounts=n_accounts, stakeholders=n_stakeholders),
            n_responses,
            seed,
        )
        for name, n_accounts, n_stakeholders, n_responses, seed in specs
    ]


def dataset(workspaces: list[Workspace]) -> dict[str, Any]:
    """Each workspace's size, for the report."""
    return {
        w.name: {
            "accounts": len(w.world.accounts),
            "stakeholders": len(w.world.stakeholders),
            "responses": w.responses,
        }
        for w in workspaces
    }


# Load through the API


@dataclass
class Load:
    """What one load phase sent and what the service answered."""

    label: str
    requests: int = 0
    items: int = 0
    stored: int = 0
    duplicates: int = 0
    failed: int = 0
    retries: int = 0
    seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(problem[:500])

    def report(self, unit: str) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "items": self.items,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "retries": self.retries,
            "seconds": self.seconds,
            f"{unit}_per_s": (self.requests if unit == "requests" else self.items) / self.seconds
            if self.seconds
            else None,
            "statuses": dict(self.statuses),
            "latency": summary(self.latencies_ms),
            "problems": self.problems,
        }


def api_client(base_url: str, key: str, concurrency: int) -> httpx.AsyncClient:
    """The query phase's client (one request at a time: its cost per request is no matter)."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        timeout=HTTP_TIMEOUT,
    )


def load_client(base_url: str, key: str | None, concurrency: int) -> Pool:
    """The load phases' client (bench.client): a keep-alive connection per concurrent client."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return Pool(base_url, headers=headers, size=concurrency, timeout=HTTP_TIMEOUT)


async def send(
    client: Pool,
    method: str,
    url: str,
    body: bytes,
    load: Load,
    key: str | None,
    *,
    headers: dict[str, str] | None = None,
) -> Reply | None:
    """One call, retried with the same Idempotency-Key (and `headers`) on a transient failure;
    None if it never got through. Every attempt's status and latency is recorded."""
    headers = {**(headers or {}), **({"Idempotency-Key": key} if key else {})} or None
    for attempt in range(RETRIES + 1):
        began = time.perf_counter()
        try:
            response = await client.request(method, url, content=body, headers=headers)
        except (ConnectionLost, OSError) as exc:
            load.statuses[type(exc).__name__] += 1
            load.note(f"{method} {url}: {type(exc).__name__}: {exc}")
        else:
            load.latencies_ms.append((time.perf_counter() - began) * 1000)
            load.statuses[str(response.status_code)] += 1
            if response.status_code not in TRANSIENT:
                return response
            load.note(f"{method} {url}: {response.status_code} {response.text}")
        if attempt < RETRIES:
            load.retries += 1
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
    return None


async def run_workers(
    concurrency: int, jobs: Iterator[T], work: Callable[[T], Awaitable[None]]
) -> float:
    """`concurrency` tasks draining one shared iterator; the wall time it took."""

    async def worker() -> None:
        for job in jobs:
            await work(job)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - began


async def register(base_url: str, key: str, world: data.World, label: str) -> dict[str, Any]:
    """PUT every account, then every stakeholder, concurrently."""
    out: dict[str, Any] = {}
    async with load_client(base_url, key, REGISTER_CONCURRENCY) as client:
        for kind, bodies in (
            ("accounts", [(a.id, data.dumps(a.body())) for a in world.accounts]),
            ("stakeholders", [(s.id, data.dumps(s.body())) for s in world.stakeholders]),
        ):
            load = Load(f"{label}-{kind}")

            async def put(job: tuple[str, bytes], kind: str = kind, load: Load = load) -> None:
                ident, body = job
                response = await send(client, "PUT", f"/v1/{kind}/{ident}", body, load, None)
                load.requests += 1
                load.items += 1
                if response is not None and response.status_code in (200, 201):
                    load.stored += 1
                else:
                    load.failed += 1
                    if response is not None:
                        load.note(f"PUT {kind}/{ident}: {response.status_code} {response.text}")

            load.seconds = await run_workers(REGISTER_CONCURRENCY, iter(bodies), put)
            if load.failed:
                raise BenchError(f"{load.failed} {kind} were not registered: {load.problems[:5]}")
            out[kind] = load.report("requests")
    return out


async def post_batches(
    base_url: str,
    key: str,
    bodies: list[tuple[int, bytes]],
    clients: int,
    load: Load,
    part: int = 1,
) -> None:
    """POST /v1/responses/batch from `clients` concurrent clients; the time is the whole load."""
    async with load_client(base_url, key, clients) as client:

        async def post(job: tuple[int, tuple[int, bytes]]) -> None:
            number, (count, body) = job
            idempotency_key = f"bench-{load.label}-{part}-{number}"
            response = await send(
                client, "POST", "/v1/responses/batch", body, load, idempotency_key
            )
            load.requests += 1
            load.items += count
            if response is None:
                load.failed += count
            elif response.status_code in (200, 207):
                result = response.json()
                load.stored += result["stored"]
                load.duplicates += result["duplicates"]
                load.failed += result["failed"]
                for item in result["results"]:
                    if item.get("problem") is not None:
                        load.note(f"batch {number} item {item['index']}: {item['problem']}")
                        break
            else:
                load.failed += count
                load.note(f"batch {number}: {response.status_code} {response.text}")

        load.seconds += await run_workers(clients, enumerate(bodies), post)


async def post_singles(
    base_url: str, key: str, bodies: list[bytes], clients: int, load: Load
) -> None:
    """POST /v1/responses one at a time from `clients` concurrent clients."""
    async with load_client(base_url, key, clients) as client:

        async def post(job: tuple[int, bytes]) -> None:
            number, body = job
            response = await send(
                client, "POST", "/v1/responses", body, load, f"bench-{load.label}-{number}"
            )
            load.requests += 1
            load.items += 1
            if response is not None and response.status_code == 201:
                load.stored += 1
            elif response is not None and response.status_code == 200:
                load.duplicates += 1
            else:
                load.failed += 1
                if response is not None:
                    load.note(f"single {number}: {response.status_code} {response.text}")

        load.seconds = await run_workers(clients, enumerate(bodies), post)


async def stored_count(conn: Any, workspace_id: uuid.UUID) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM responses WHERE workspace_id = $1", workspace_id
    )
    return count


def check_stored(load: Load, stored: int, expected: int) -> None:
    """Fail loudly when anything sent was not stored exactly once."""
    if stored != expected or load.failed:
        raise BenchError(
            f"{load.label}: {stored} responses stored, {expected} expected; "
            f"{load.failed} items failed, statuses {dict(load.statuses)}; "
            f"first problems: {load.problems[:5]}"
        )


# A workspace's load


async def load_workspace(
    args: argparse.Namespace,
    service: Service,
    conn: Any,
    workspace: Workspace,
    phases: Phases,
    end: datetime,
    between: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> dict[str, Any]:
    """Register a workspace's accounts and stakeholders, then post its responses in batches;
    `between` runs at the checkpoint (main workspace only)."""
    label = workspace.name
    with phases(f"{label}: register accounts and stakeholders"):
        registration = await register(service.base_url, workspace.key, workspace.world, label)
    with phases(f"{label}: generate responses"):
        items = data.generate_responses(
            workspace.world, workspace.seed, count=workspace.responses, end=end
        )
        checkpoint = args.checkpoint if between is not None else 0
        parts = [p for p in data.split_checkpoint(items, checkpoint) if p]
        del items
    load = Load(label)
    expected = 0
    count = len(parts)
    for number in range(1, count + 1):
        part = parts.pop(0)  # so each part's items and bodies are freed once sent
        bodies = data.batch_bodies(part)
        expected += len(part)
        del part
        with phases(f"{label}: bulk load up to {expected:,} responses (part {number}/{count})"):
            await post_batches(service.base_url, workspace.key, bodies, args.clients, load, number)
        del bodies
        check_stored(load, await stored_count(conn, workspace.id), expected)
        if between is not None and number < count:
            await between()
    return {"registration": registration, "bulk": load.report("responses")}


async def load_singles(
    args: argparse.Namespace,
    service: Service,
    conn: Any,
    workspace: Workspace,
    phases: Phases,
    ingest: dict[str, Any],
) -> list[bytes]:
    """`--single-requests` responses posted one at a time from `--single-clients` clients, into
    `ingest["single"]`; then every response sent must be stored exactly once. The bodies sent."""
    with phases("generate single responses"):
        bodies = data.single_bodies(
            workspace.world, workspace.seed, count=args.single_requests, end=datetime.now(UTC)
        )
    single = Load("single")
    if not args.no_vacuum:
        # As a workspace in service is, some time after its import: a table analyzed before
        # the bulk load filled it costs an answer about five times the database's CPU.
        await conn.execute("VACUUM (ANALYZE) responses")
    with phases(f"single responses ({args.single_clients} clients)"):
        async with cpu.measuring(service.process.pid, conn) as used:
            await post_singles(service.base_url, workspace.key, bodies, args.single_clients, single)
    used.requests = single.requests
    ingest["single"] = single.report("requests") | {"cpu": used.report()}
    expected = workspace.responses + args.single_requests
    check_stored(single, await stored_count(conn, workspace.id), expected)
    return bodies


async def copy_floor(conn: Any, workspace: Workspace, phases: Phases) -> dict[str, Any]:
    """The bulk load's floor: a COPY of the rows the API stored, in rows/s."""
    with phases("floor: COPY of the stored rows"):
        copy = await floors.copy_rows(conn, workspace.id)
    return {"rows": copy.rows, "seconds": copy.seconds, "rows_per_s": copy.rows_per_second}
