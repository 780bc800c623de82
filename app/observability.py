"""What an operator watches: Prometheus metrics at /metrics, and a request id on every answer.

`Observe` is a pure ASGI middleware, outermost: it takes the request's `X-Request-Id` when it is
a sane one (1-64 of `A-Za-z0-9._:-`) or makes one, keeps it in `REQUEST_ID` for the log lines of
the request (app.logs), returns it as `X-Request-Id`, and counts the request and its latency by
method, route template (`/v1/accounts/{account_id}`, never the path itself: ids and tokens stay
out of the labels, and the label set stays bounded) and status. A few microseconds a request.

The pool figures are read at scrape time from the engines the lifespan registered; the jobs'
(queue depth, failures) from the jobs table, which every worker process shares, so any process
can answer them. With several web processes (NPS_WORKERS > 1) `nps serve` sets
PROMETHEUS_MULTIPROC_DIR, so the request metrics of every process are summed whichever one the
scrape reaches; the pool figures are then the answering process's, labelled with its pid.
"""

import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID_HEADER = b"x-request-id"
_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,64}")
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "nps_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "nps_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-Id when it is sane, else a new one (16 hex digits)."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if _SANE_ID.fullmatch(value):
                sent: str = value.decode()
                return sent
            break
    return secrets.token_hex(8)


class Observe:
    """The request id and the request metrics (module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        header = (REQUEST_ID_HEADER, request_id.encode())
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500  # no answer started: the server will send its own 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None)
            template = UNMATCHED if route is None else scope.get("root_path", "") + route
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            LATENCY.labels(method, template).observe(time.perf_counter() - started)
            REQUESTS.labels(method, template, str(status)).inc()
            REQUEST_ID.reset(token)


class PoolCollector(Collector):
    """The connection pools of this process's engines, read when scraped."""

    def __init__(self) -> None:
        self.engines: dict[str, AsyncEngine] = {}

    def collect(self) -> Iterator[Metric]:
        labels = ["pool", "pid"]
        in_use = GaugeMetricFamily("nps_db_pool_in_use", "Connections checked out", labels=labels)
        idle = GaugeMetricFamily("nps_db_pool_idle", "Connections open and idle", labels=labels)
        size = GaugeMetricFamily("nps_db_pool_size", "Connections the pool may hold", labels=labels)
        waiting = GaugeMetricFamily(
            "nps_db_pool_waiting", "Requests waiting for a connection", labels=labels
        )
        pid = str(os.getpid())
        for name, engine in self.engines.items():
            pool: Any = engine.pool
            values = [name, pid]
            in_use.add_metric(values, pool.checkedout())
            idle.add_metric(values, pool.checkedin())
            size.add_metric(values, pool.size())
            waiting.add_metric(values, _waiters(pool))
        yield from (in_use, idle, size, waiting)


def _waiters(pool: Any) -> int:
    """Coroutines waiting in the pool's queue (SQLAlchemy's AsyncAdaptedQueue wraps an
    asyncio.Queue, whose getters are the waiters); 0 for a pool without one."""
    queue = getattr(getattr(pool, "_pool", None), "_queue", None)
    getters = getattr(queue, "_getters", ())
    return sum(1 for getter in getters if not getter.done())


POOLS = PoolCollector()
REGISTRY.register(POOLS)


def watch_pool(name: str, engine: AsyncEngine) -> None:
    """Report `engine`'s pool as `name` (the lifespan calls this for its engines)."""
    POOLS.engines[name] = engine


_JOBS = text(
    "SELECT status, count(*) AS jobs, "
    "count(*) FILTER (WHERE status = 'queued' AND run_at <= now()) AS due, "
    "count(*) FILTER (WHERE status = 'queued' AND last_error IS NOT NULL) AS retrying "
    "FROM jobs GROUP BY status"
)


async def job_metrics(engine: AsyncEngine) -> list[Metric]:
    """The background jobs as the table holds them: by status, due now (the queue's depth), and
    waiting for a retry after a failure. Failed is a job out of attempts (kept
    NPS_JOB_RETENTION_DAYS). An unreachable database gives nps_jobs_up 0."""
    by_status = GaugeMetricFamily("nps_jobs", "Background jobs by status", labels=["status"])
    due = GaugeMetricFamily("nps_jobs_due", "Queued jobs whose time has come (queue depth)")
    retrying = GaugeMetricFamily("nps_jobs_retrying", "Queued jobs whose last attempt failed")
    up = GaugeMetricFamily("nps_jobs_up", "Whether the jobs table could be read")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SET LOCAL statement_timeout = 2000"))
            rows = (await conn.execute(_JOBS)).all()
    except Exception:  # metrics must answer while the database does not
        up.add_metric([], 0)
        return [up]
    counts = {row.status: row.jobs for row in rows}
    for status in ("queued", "running", "done", "failed"):
        by_status.add_metric([status], counts.get(status, 0))
    due.add_metric([], sum(row.due for row in rows))
    retrying.add_metric([], sum(row.retrying for row in rows))
    up.add_metric([], 1)
    return [by_status, due, retrying, up]


class _Fixed(Collector):
    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self.metrics


async def exposition(engine: AsyncEngine) -> tuple[bytes, str]:
    """The body of /metrics and its content type."""
    if os.environ.get(MULTIPROCESS):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(POOLS)
    else:
        registry = CollectorRegistry()
        registry.register(_Fixed(REGISTRY.collect()))
    registry.register(_Fixed(await job_metrics(engine)))
    return generate_latest(registry), CONTENT_TYPE_LATEST
