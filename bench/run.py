"""`make bench`: load a realistic workspace through the real API and time it against the floor.

One run, on the machine it runs on: a scratch database (on NPS_BENCH_DATABASE_URL's server, else an
embedded PostgreSQL), the service started as in production, a seeded B2B workspace loaded over
HTTP, the dashboard queries timed at the checkpoint and at the end, the same work done directly
with asyncpg (COPY and plain SQL aggregates) as the floor, and the service's peak memory.
`python -m bench.run --help` lists the options.
"""

import argparse
import asyncio
import importlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from app.config import async_database_url
from app.embedded import embedded_postgres
from bench import data, floors

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
WARMUPS = 3
MIN_SAMPLES = 5
REGISTER_CONCURRENCY = 16
TRANSIENT = {409, 429, 500, 502, 503, 504}
RETRIES = 5
READY_TIMEOUT = 90.0
HTTP_TIMEOUT = 300.0
QUERY_NAMES = (
    "nps_365d",
    "by_role",
    "by_account",
    "account",
    "trend_monthly_2y",
    "at_risk",
    "coverage",
)
WORKSPACE_WIDE = ("nps_365d", "by_role", "by_account", "trend_monthly_2y")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except for flags and options whose default is None."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


class BenchError(Exception):
    """The run cannot go on, or its figures would be wrong: stop and say why."""


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark the NPS service through its API against the hardware's floor.",
        formatter_class=_Help,
    )
    add = parser.add_argument
    add("--responses", type=int, default=1_000_000, help="responses in the main workspace")
    add(
        "--checkpoint",
        type=int,
        default=100_000,
        help="also time the query set when this many responses are in (0: only at the end)",
    )
    add("--accounts", type=int, default=2000, help="accounts in the main workspace")
    add("--stakeholders", type=int, default=20_000, help="stakeholders in the main workspace")
    add(
        "--other-workspaces",
        type=int,
        default=2,
        help="other workspaces loaded first, each with ~10%% of the main volume",
    )
    add("--clients", type=int, default=4, help="concurrent clients posting batches")
    add("--single-clients", type=int, default=32, help="concurrent clients posting one response")
    add("--single-requests", type=int, default=10_000, help="single POST /v1/responses calls")
    add("--repeats", type=int, default=50, help=f"timed calls per query, after {WARMUPS} warm-ups")
    add(
        "--query-budget",
        type=float,
        default=120.0,
        help="seconds one query may take per phase (API and floor each): a slower query stops "
        f"repeating after {MIN_SAMPLES} timed calls, so a full run stays bounded",
    )
    add("--workers", type=int, default=2, help="uvicorn worker processes (NPS_WORKERS)")
    add("--seed", type=int, default=42, help="seed of the generated data")
    add("--out", type=Path, help="JSON file (default: bench/results/bench-<UTC>.json)")
    add("--keep", action="store_true", help="keep the scratch database (and embedded data dir)")
    add(
        "--no-vacuum",
        action="store_true",
        help="skip VACUUM ANALYZE before each query phase (timings then include stale stats)",
    )
    args = parser.parse_args(argv)
    for name in ("responses", "accounts", "stakeholders", "clients", "single_clients", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.repeats < 1 or args.single_requests < 0 or args.other_workspaces < 0:
        parser.error("--repeats must be >= 1; --single-requests and --other-workspaces >= 0")
    return args


# Statistics


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(samples_ms: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(samples_ms),
        "p50_ms": percentile(samples_ms, 50),
        "p99_ms": percentile(samples_ms, 99),
        "mean_ms": sum(samples_ms) / len(samples_ms) if samples_ms else None,
        "max_ms": max(samples_ms) if samples_ms else None,
    }


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The database


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def asyncpg_dsn(url: str) -> str:
    return async_database_url(url).replace("postgresql+asyncpg://", "postgresql://", 1)


async def _admin(server_url: str, statement: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def postgres_server(keep: bool) -> Iterator[tuple[str, str]]:
    """A plain URL of a server's maintenance database, and which kind of server it is."""
    configured = os.environ.get("NPS_BENCH_DATABASE_URL")
    if configured:
        yield configured, "server"
        return
    parent = Path(tempfile.mkdtemp(prefix="nps-bench-"))
    try:
        with embedded_postgres(parent / "pg", database="postgres", delete=not keep) as url:
            yield url, "embedded"
    finally:
        if keep:
            say(f"kept the embedded PostgreSQL data directory {parent / 'pg'}")
        else:
            shutil.rmtree(parent, ignore_errors=True)


@contextmanager
def scratch_database(server_url: str, keep: bool) -> Iterator[str]:
    """A new database `nps_bench_<hex>` on the server for the run; its plain URL."""
    name = f"nps_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(server_url, name)
    finally:
        if keep:
            say(f"kept the database {name}")
        else:
            asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# The service and its command line


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    """The caller's environment without NPS_ settings, so the service runs as configured here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPS_")}
    env |= {"NPS_ENV": "production", "NPS_DATABASE_URL": database_url}
    return env | extra


def nps(arguments: Sequence[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(BIN / "nps"), *arguments], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"`nps {' '.join(arguments)}` failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def create_workspace(name: str, env: dict[str, str]) -> str:
    """A workspace made with `nps create-workspace`; its admin key is the last stdout line."""
    lines = nps(["create-workspace", name], env).strip().splitlines()
    if not lines:
        raise BenchError(f"`nps create-workspace {name}` printed no key")
    return lines[-1].strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_service(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (graceful), then SIGKILL to the process group this script started, if need be."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if _group_alive(process.pid):  # a worker that outlived its supervisor
        os.killpg(process.pid, signal.SIGTERM)
        time.sleep(1)
        if _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def running_service(database_url: str, workers: int, log: Path) -> Iterator[Service]:
    port = free_port()
    env = service_env(
        database_url,
        NPS_HOST="127.0.0.1",
        NPS_PORT=str(port),
        NPS_WORKERS=str(workers),
        NPS_LOG_LEVEL="warning",
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        # A session of its own, so Ctrl-C reaches this script, which stops the service itself.
        process = subprocess.Popen(
            [str(BIN / "nps"), "serve"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Service(process, f"http://127.0.0.1:{port}", log)
    finally:
        stop_service(process)


def _log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def wait_ready(service: Service) -> float:
    began = time.perf_counter()
    async with httpx.AsyncClient(base_url=service.base_url, timeout=5) as client:
        while time.perf_counter() - began < READY_TIMEOUT:
            if (code := service.process.poll()) is not None:
                raise BenchError(f"the service exited with {code}:\n{_log_tail(service.log)}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise BenchError(
        f"the service was not ready in {READY_TIMEOUT:.0f} s:\n{_log_tail(service.log)}"
    )


# Memory


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return found


def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        return "?"


class RssSampler(threading.Thread):
    """Every 100 ms: VmRSS of the service process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid = pid
        self.interval = interval
        self.stopping = threading.Event()
        self.peak_total_kb = 0
        self.current_total_kb = 0
        self.peak_by_pid: dict[int, int] = {}
        self.commands: dict[int, str] = {}
        self.samples = 0

    def sample(self) -> None:
        pending = [self.pid]
        total = 0
        while pending:
            pid = pending.pop()
            rss = _rss_kb(pid)
            if rss is None:
                continue
            if pid not in self.commands:
                self.commands[pid] = _command(pid)
            total += rss
            self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), rss)
            pending.extend(_children(pid))
        self.current_total_kb = total
        self.peak_total_kb = max(self.peak_total_kb, total)
        self.samples += 1

    def run(self) -> None:
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=2)

    def report(self) -> dict[str, Any]:
        return {
            "peak_total_mb": self.peak_total_kb / 1024,
            "samples": self.samples,
            "interval_s": self.interval,
            "peak_by_process": [
                {"pid": pid, "peak_mb": kb / 1024, "command": self.commands.get(pid, "?")}
                for pid, kb in sorted(self.peak_by_pid.items())
            ],
        }


@contextmanager
def sampling(pid: int) -> Iterator[RssSampler]:
    sampler = RssSampler(pid)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()


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
            f"{unit}_per_s": (self.items if unit == "responses" else self.requests) / self.seconds
            if self.seconds
            else None,
            "statuses": dict(self.statuses),
            "latency": summary(self.latencies_ms),
            "problems": self.problems,
        }


def _client(base_url: str, key: str, concurrency: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        timeout=HTTP_TIMEOUT,
    )


async def send(
    client: httpx.AsyncClient, method: str, url: str, body: bytes, load: Load, key: str | None
) -> httpx.Response | None:
    """One call, retried with the same Idempotency-Key on a transient failure; None if it never
    got through. Every attempt's status and latency is recorded."""
    headers = {"Idempotency-Key": key} if key else None
    for attempt in range(RETRIES + 1):
        began = time.perf_counter()
        try:
            response = await client.request(method, url, content=body, headers=headers)
        except httpx.TransportError as exc:
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
    async with _client(base_url, key, REGISTER_CONCURRENCY) as client:
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
    async with _client(base_url, key, clients) as client:

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
    async with _client(base_url, key, clients) as client:

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


# Queries


@dataclass
class Query:
    name: str
    outcome: str = "ok"  # ok, n/a (the endpoint does not exist yet) or error
    samples_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    detail: str | None = None

    def report(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "statuses": dict(self.statuses),
            "detail": self.detail,
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
    return "/v1/coverage", {}


async def time_api_queries(
    client: httpx.AsyncClient, account_for: Callable[[int], str], repeats: int, budget: float
) -> dict[str, Query]:
    """Each dashboard call `repeats` times after warm-ups, one after another, default windows."""
    out: dict[str, Query] = {}
    for name in QUERY_NAMES:
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
        out[name] = query
    return out


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
    key: str,
    conn: Any,
    workspace_id: uuid.UUID,
    account_ids: list[str],
) -> dict[str, Any]:
    """The query set through the API, the same answers as plain SQL, and a cross-check."""
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

    async with _client(service.base_url, key, 1) as client:
        api = await time_api_queries(client, account_for, args.repeats, args.query_budget)
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


# The run


@dataclass
class Workspace:
    name: str
    key: str
    id: uuid.UUID
    world: data.World
    responses: int
    seed: str


def _other_sizes(args: argparse.Namespace) -> tuple[int, int, int]:
    accounts = max(1, args.accounts // 10)
    stakeholders = max(accounts, args.stakeholders // 10)
    return accounts, stakeholders, max(1, args.responses // 10)


class Phases:
    """Wall time of each phase, and the service's memory at its end."""

    def __init__(self, sampler: RssSampler | None = None) -> None:
        self.seconds: dict[str, float] = {}
        # This script shares the cores with the service: what the load generator itself used.
        self.client_cpu_s: dict[str, float] = {}
        self.rss_mb: dict[str, float] = {}
        self.sampler = sampler

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        say(f"== {name} ...")
        began, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - began
            self.client_cpu_s[name] = time.process_time() - cpu
            if self.sampler is not None:
                self.rss_mb[name] = self.sampler.current_total_kb / 1024
            say(f"   {name}: {self.seconds[name]:.1f} s")


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


async def bench(
    args: argparse.Namespace,
    service: Service,
    database_url: str,
    workspaces: list[Workspace],
    phases: Phases,
    report: dict[str, Any],
) -> None:
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    # A KeyboardInterrupt raised by a signal handler inside the loop can be swallowed by a
    # callback (uvloop logs it and goes on), so SIGTERM cancels the run the way Ctrl-C does.
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await _bench(args, service, database_url, workspaces, phases, report)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _interrupt)


async def _bench(
    args: argparse.Namespace,
    service: Service,
    database_url: str,
    workspaces: list[Workspace],
    phases: Phases,
    report: dict[str, Any],
) -> None:
    with phases("start the service"):
        report["service_ready_s"] = await wait_ready(service)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        report["machine"]["postgresql"] = await conn.fetchval("SHOW server_version")
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        *others, main = workspaces
        report["ingest"]["other_workspaces"] = [
            await load_workspace(args, service, conn, other, phases, end) for other in others
        ]
        account_ids = [a.id for a in main.world.accounts]
        queries: dict[str, Any] = {}
        report["queries"] = queries

        async def checkpoint() -> None:
            with phases("queries at the checkpoint"):
                queries["checkpoint"] = await query_phase(
                    args, service, main.key, conn, main.id, account_ids
                )

        loaded = await load_workspace(args, service, conn, main, phases, end, checkpoint)
        report["registration"] = loaded["registration"]
        report["ingest"]["bulk"] = loaded["bulk"]
        if args.single_requests:
            with phases("generate single responses"):
                bodies = data.single_bodies(
                    main.world, main.seed, count=args.single_requests, end=datetime.now(UTC)
                )
            single = Load("single")
            with phases(f"single responses ({args.single_clients} clients)"):
                await post_singles(service.base_url, main.key, bodies, args.single_clients, single)
            report["ingest"]["single"] = single.report("requests")
            check_stored(
                single, await stored_count(conn, main.id), main.responses + args.single_requests
            )
        with phases("queries at the end"):
            queries["final"] = await query_phase(
                args, service, main.key, conn, main.id, account_ids
            )
        with phases("floor: COPY of the stored rows"):
            copy = await floors.copy_rows(conn, main.id)
        report["floors"] = {
            "copy": {
                "rows": copy.rows,
                "seconds": copy.seconds,
                "rows_per_s": copy.rows_per_second,
            }
        }
    finally:
        await conn.close()


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (less CPU for the load generator)."""
    try:
        factory = importlib.import_module("uvloop").new_event_loop
    except ImportError:
        factory = None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(coroutine)
    except asyncio.CancelledError:  # SIGTERM cancelled the run
        raise KeyboardInterrupt from None


def machine_info() -> dict[str, Any]:
    def git(*arguments: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    memory_kb = None
    try:
        with open("/proc/meminfo") as f:
            memory_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    status = git("status", "--porcelain")
    return {
        "cpu_count": os.cpu_count(),
        "memory_mb": memory_kb / 1024 if memory_kb else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
    }


async def _workspace_ids(database_url: str) -> dict[str, uuid.UUID]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    out: Path = args.out or RESULTS / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    report: dict[str, Any] = {
        "started_at": started.isoformat(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine_info(),
        "ingest": {},
        "error": None,
    }
    phases = Phases()
    failed = False
    sampler: RssSampler | None = None
    log = out.with_suffix(".service.log")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with ExitStack() as stack:
            try:
                with phases("set up the database"):
                    server_url, kind = stack.enter_context(postgres_server(args.keep))
                    report["config"]["database"] = kind
                    database_url = stack.enter_context(scratch_database(server_url, args.keep))
                    workspaces = setup_workspaces(args, database_url)
                report["dataset"] = {
                    w.name: {
                        "accounts": len(w.world.accounts),
                        "stakeholders": len(w.world.stakeholders),
                        "responses": w.responses,
                    }
                    for w in workspaces
                }
                service = stack.enter_context(running_service(database_url, args.workers, log))
                sampler = stack.enter_context(sampling(service.process.pid))
                phases.sampler = sampler
                report["service_log"] = str(log)
                run_async(bench(args, service, database_url, workspaces, phases, report))
            finally:
                if sampler is not None:
                    sampler.stop()
                    report["rss"] = sampler.report()
                    phases.sampler = None
                with phases("stop the service, drop the database"):
                    stack.close()
                if sampler is not None:
                    report["service_log_errors"] = _log_errors(log)
    except BenchError as exc:
        failed = True
        report["error"] = str(exc)
        say(f"\nbenchmark failed: {exc}")
    except KeyboardInterrupt:
        failed = True
        report["error"] = "interrupted"
        say("\ninterrupted")
    except Exception as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        report["phases_s"] = phases.seconds
        report["client_cpu_s"] = phases.client_cpu_s
        report["rss_mb_at_phase_end"] = phases.rss_mb
        report["finished_at"] = datetime.now(UTC).isoformat()
        finish(report, out)
    return 1 if failed else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so a SIGTERM stops the service and drops the database too


def _log_errors(log: Path) -> dict[str, Any]:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return {"lines": 0}
    errors = [line for line in lines if "Traceback" in line or "ERROR" in line]
    return {"lines": len(lines), "error_lines": len(errors), "first": errors[:10]}


# The report


def _ratio(api: float | None, floor: float | None) -> float | None:
    return api / floor if api is not None and floor else None


def target_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """metric | API | floor | ratio (API / floor) | target | met."""
    rows: list[dict[str, Any]] = []

    def row(
        metric: str,
        api: float | None,
        floor: float | None = None,
        target: str = "",
        met: bool | None = None,
    ) -> None:
        rows.append(
            {
                "metric": metric,
                "api": api,
                "floor": floor,
                "ratio": _ratio(api, floor),
                "target": target,
                "met": met,
            }
        )

    ingest = report.get("ingest", {})
    copy = report.get("floors", {}).get("copy", {}).get("rows_per_s")
    for kind, registered in report.get("registration", {}).items():
        row(f"register {kind} (PUT), requests/s", registered["requests_per_s"])
    if bulk := ingest.get("bulk"):
        rate = bulk["responses_per_s"]
        row("bulk ingest, responses/s", rate, copy, ">= 25000", rate is not None and rate >= 25000)
    if single := ingest.get("single"):
        rate, p50, p99 = (
            single["requests_per_s"],
            single["latency"]["p50_ms"],
            single["latency"]["p99_ms"],
        )
        row("single ingest, requests/s", rate, None, ">= 600", rate is not None and rate >= 600)
        row("single ingest p50, ms", p50)
        row("single ingest p99, ms", p99, None, "< 100", p99 is not None and p99 < 100)
    final = report.get("queries", {}).get("final")
    if final:
        for name in QUERY_NAMES:
            api, floor = final["api"][name], final["floor"][name]
            if api["outcome"] == "n/a":
                row(f"{name}: n/a ({api['detail'][:3]})", None, floor["p99_ms"])
                continue
            label = name if api["outcome"] == "ok" else f"{name} [ERRORS {api['statuses']}]"
            row(f"{label} p50, ms", api["p50_ms"], floor["p50_ms"])
            p99, floor_p99 = api["p99_ms"], floor["p99_ms"]
            ok = api["outcome"] == "ok" and p99 is not None
            if name == "account":
                row(f"{label} p99, ms", p99, floor_p99, "< 20", ok and p99 < 20)
            elif name in WORKSPACE_WIDE:
                met = ok and p99 < 100 and floor_p99 is not None and p99 < floor_p99
                row(f"{label} p99, ms", p99, floor_p99, "< 100 and < floor", met)
            else:
                row(f"{label} p99, ms", p99, floor_p99)
    if rss := report.get("rss"):
        peak = rss["peak_total_mb"]
        row("service peak RSS, MB", peak, None, "< 300", peak < 300)
    return rows


def scaling(report: dict[str, Any]) -> dict[str, Any]:
    """How each query's cost grew from the checkpoint to the end, beside the floor's growth."""
    queries = report.get("queries", {})
    first, last = queries.get("checkpoint"), queries.get("final")
    if not first or not last:
        return {}
    out: dict[str, Any] = {
        "responses": [first["responses"], last["responses"]],
        "growth": _ratio(last["responses"], first["responses"]),
        "queries": {},
    }
    for name in QUERY_NAMES:
        a, b = first["api"][name], last["api"][name]
        fa, fb = first["floor"][name], last["floor"][name]
        out["queries"][name] = {
            "api_p50_ms": [a["p50_ms"], b["p50_ms"]],
            "api_p99_ms": [a["p99_ms"], b["p99_ms"]],
            "api_p50_growth": _ratio(b["p50_ms"], a["p50_ms"]),
            "floor_p50_ms": [fa["p50_ms"], fb["p50_ms"]],
            "floor_p50_growth": _ratio(fb["p50_ms"], fa["p50_ms"]),
        }
    return out


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1:
        return f"{value:.2f}"
    return f"{value:.2g}"


def print_report(report: dict[str, Any]) -> None:
    rows = report["targets"]
    say()
    say("ratio = API / floor: for a rate, the share of the floor reached; for a latency, how many")
    say("times the plain SQL aggregate's time (below 1: faster than aggregating the raw rows).")
    header = ("metric", "API", "floor", "ratio", "target", "met?")
    table = [
        (
            r["metric"],
            _fmt(r["api"]),
            _fmt(r["floor"]),
            _fmt(r["ratio"]),
            r["target"] or "-",
            "-" if r["met"] is None else ("yes" if r["met"] else "NO"),
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *table]) for i in range(len(header))]
    for line in [header, tuple("-" * w for w in widths), *table]:
        say(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    if grown := report.get("scaling"):
        low, high = grown["responses"]
        say()
        say(f"cost growth from {low:,} to {high:,} responses (x{_fmt(grown['growth'])}):")
        for name, q in grown["queries"].items():
            p50 = q["api_p50_ms"]
            say(
                f"  {name:<17} p50 {_fmt(p50[0])} -> {_fmt(p50[1])} ms "
                f"(x{_fmt(q['api_p50_growth'])}); floor x{_fmt(q['floor_p50_growth'])}"
            )
    for phase in ("checkpoint", "final"):
        checks = report.get("queries", {}).get(phase, {}).get("verified")
        if checks:
            say(f"answers vs floor ({phase}): " + ", ".join(f"{k} {v}" for k, v in checks.items()))
    if rss := report.get("rss"):
        say()
        say(f"service peak RSS {rss['peak_total_mb']:.1f} MB (sum over processes); per process:")
        for p in rss["peak_by_process"]:
            say(f"  {p['pid']:>7}  {p['peak_mb']:7.1f} MB  {p['command']}")
    if errors := report.get("service_log_errors", {}).get("error_lines"):
        say(f"\nthe service logged {errors} error lines: see {report.get('service_log')}")
    say()
    say("phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["phases_s"].items()))


def finish(report: dict[str, Any], out: Path) -> None:
    report["targets"] = target_rows(report)
    report["scaling"] = scaling(report)
    print_report(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    say(f"results written to {out}")


if __name__ == "__main__":
    sys.exit(main())
