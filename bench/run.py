"""`make bench`: load a realistic workspace through the real API and time it against the floor.

One run, on the machine it runs on: a scratch database (on NPS_BENCH_DATABASE_URL's server, else an
embedded PostgreSQL), the service started as in production, a seeded B2B workspace loaded over
HTTP, the dashboard queries timed at the checkpoint and at the end, the same work done directly
with asyncpg (COPY and plain SQL aggregates) as the floor, and the service's peak memory.
`python -m bench.run --help` lists the options. This module parses them and runs the phases in
order; the work itself is done by the other modules of `bench`.
"""

import argparse
import asyncio
import importlib
import signal
import sys
import time
from collections.abc import Coroutine, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from app.embedded import plain_dsn
from app.services import tallies
from bench import BenchError, say
from bench.collect import collect_phase, floor_load
from bench.imports import import_phase
from bench.load import (
    Workspace,
    copy_floor,
    dataset,
    load_singles,
    load_workspace,
    setup_workspaces,
)
from bench.memory import RssSampler, sampling
from bench.overload import overload_phase
from bench.plans import plans_phase
from bench.queries import MIN_SAMPLES, WARMUPS, query_phase
from bench.report import RESULTS, Phases, finish, machine_info
from bench.revalidation import revalidation_phase
from bench.service import (
    Service,
    database_server,
    log_errors,
    running_floor,
    running_service,
    scratch_database,
    wait_ready,
)
from bench.webhooks import webhook_phase

T = TypeVar("T")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except for flags and options whose default is None."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


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
    add(
        "--invitations",
        type=int,
        default=10_000,
        help="invitations issued in batches, one per stakeholder (at most --stakeholders), each "
        "then answered once through POST /v1/public/answers (0: neither)",
    )
    add("--invitation-batch", type=int, default=1000, help="invitations per batch request")
    add(
        "--webhook-events",
        type=int,
        default=10_000,
        help="the webhook phase, last: events left pending for the worker to drain to a local "
        "receiver, after --webhook-requests single answers without and with a webhook "
        "(0: no webhook phase)",
    )
    add(
        "--worker-concurrency",
        type=int,
        help="NPS_WORKER_CONCURRENCY of the webhook phase's worker (default: the service's)",
    )
    add(
        "--webhook-requests",
        type=int,
        default=2000,
        help="single POST /v1/responses of the webhook phase, each without and with a webhook",
    )
    add("--repeats", type=int, default=50, help=f"timed calls per query, after {WARMUPS} warm-ups")
    add(
        "--query-budget",
        type=float,
        default=120.0,
        help="seconds one query may take per phase (API and floor each): a slower query stops "
        f"repeating after {MIN_SAMPLES} timed calls, so a full run stays bounded",
    )
    add(
        "--overload-seconds",
        type=float,
        default=60.0,
        help="the overload phase, after the queries: heavy reads from --overload-readers clients "
        "while single writes and /healthz are timed (0: no overload phase)",
    )
    add("--overload-readers", type=int, default=300, help="heavy readers of the overload phase")
    add(
        "--revalidation-seconds",
        type=float,
        default=10,
        help="the revalidation phase, after the queries: clients poll unchanged reports with "
        "If-None-Match (0: no revalidation phase)",
    )
    add("--revalidation-clients", type=int, default=32, help="clients of the revalidation phase")
    add(
        "--revalidation-rate",
        type=float,
        default=500.0,
        help="polls a second offered in all in the revalidation phase's paced part",
    )
    add("--overload-writers", type=int, default=4, help="single writers of the overload phase")
    add("--workers", type=int, default=2, help="uvicorn worker processes (NPS_WORKERS)")
    add(
        "--import-responses",
        type=int,
        default=1_000_000,
        help="responses in the CSV of the import phase (0: no import phase)",
    )
    add("--seed", type=int, default=42, help="seed of the generated data")
    add("--out", type=Path, help="JSON file (default: bench/results/bench-<UTC>.json)")
    add("--keep", action="store_true", help="keep the scratch database (and embedded data dir)")
    add(
        "--no-vacuum",
        action="store_true",
        help="skip VACUUM ANALYZE before the single responses and each query phase (timings "
        "then include stale stats)",
    )
    args = parser.parse_args(argv)
    for name in ("responses", "accounts", "stakeholders", "clients", "single_clients", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.repeats < 1 or args.single_requests < 0 or args.other_workspaces < 0:
        parser.error("--repeats must be >= 1; --single-requests and --other-workspaces >= 0")
    if args.invitations < 0 or not 1 <= args.invitation_batch <= 1000:
        parser.error("--invitations must be >= 0 and --invitation-batch 1-1000")
    if args.overload_seconds < 0 or args.overload_readers < 1 or args.overload_writers < 1:
        parser.error("--overload-seconds must be >= 0, --overload-readers/-writers >= 1")
    if args.webhook_events < 0 or args.webhook_requests < 1:
        parser.error("--webhook-events must be >= 0 and --webhook-requests >= 1")
    return args


async def bench(
    args: argparse.Namespace,
    service: Service,
    floor: Service,
    database_url: str,
    workspaces: list[Workspace],
    phases: Phases,
    report: dict[str, Any],
) -> None:
    with phases("start the service and the floor server"):
        report["service_ready_s"] = await wait_ready(service)
        await wait_ready(floor)
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        report["machine"]["postgresql"] = await conn.fetchval("SHOW server_version")
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        *others, main = workspaces
        report["ingest"]["other_workspaces"] = [
            await load_workspace(args, service, conn, other, phases, end) for other in others
        ]
        queries: dict[str, Any] = {}
        report["queries"] = queries

        async def checkpoint() -> None:
            with phases("queries at the checkpoint"):
                queries["checkpoint"] = await query_phase(args, service, conn, main, phases.sampler)

        loaded = await load_workspace(args, service, conn, main, phases, end, checkpoint)
        report["registration"] = loaded["registration"]
        report["ingest"]["bulk"] = loaded["bulk"]
        with phases("tallies: the worker's tallies.fold after the load"):
            report["tallies"] = await fold_tallies(conn, workspaces)
        if not args.no_vacuum:
            with phases("cold and settled plans (the dashboard before and after ANALYZE)"):
                report["plans"] = await plans_phase(args, service, conn, main)
        if args.single_requests:
            bodies = await load_singles(args, service, conn, main, phases, report["ingest"])
            with phases(f"floor: one INSERT per request ({args.single_clients} clients)"):
                report["ingest"]["single_floor"] = await floor_load(
                    floor, conn, "/one", bodies, args.single_clients, "single-floor"
                )
            del bodies
        if args.single_requests:
            # The singles' deltas (their own and their people's relinked earlier answers).
            with phases("tallies: the worker's tallies.fold after the single answers"):
                report["tallies_after_singles"] = await fold_tallies(conn, workspaces)
        with phases("queries at the end"):
            queries["final"] = await query_phase(args, service, conn, main, phases.sampler)
        if args.revalidation_seconds > 0:
            clients = args.revalidation_clients
            with phases(f"revalidation: {clients} clients polling with If-None-Match"):
                report["revalidation"] = await revalidation_phase(args, service, main)
        if args.overload_seconds:
            with phases(f"overload: {args.overload_readers} heavy readers"):
                report["overload"] = await overload_phase(args, service, main)
        if args.invitations:
            report["collect"] = await collect_phase(args, service, floor, conn, main, phases)
        if args.webhook_events:
            log = Path(report["service_log"]).with_suffix("").with_suffix(".worker.log")
            report["webhooks"] = await webhook_phase(
                args, service, conn, main, database_url, phases, log
            )
        report["floors"] = {"copy": await copy_floor(conn, main, phases)}
        if args.import_responses:
            log = Path(report["service_log"]).with_suffix("").with_suffix(".import.log")
            report["import"] = await import_phase(
                args, service, conn, main, database_url, phases, log
            )
    finally:
        await conn.close()


async def fold_tallies(conn: Any, workspaces: list[Workspace]) -> dict[str, Any]:
    """What the worker's periodic tallies.fold does within FOLD_EVERY of the load's end (the
    bench runs no worker during the load): each workspace's deltas moved into its tallies, timed."""
    started = time.perf_counter()
    deltas = 0
    for workspace in workspaces:
        async with conn.transaction():
            deltas += await tallies.fold_on(conn, workspace.id)
    return {"deltas": deltas, "seconds": round(time.perf_counter() - started, 3)}


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (less CPU for the load generator)."""

    async def cancellable() -> T:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None
        # A KeyboardInterrupt raised by a signal handler inside the loop can be swallowed by a
        # callback (uvloop logs it and goes on), so SIGTERM cancels the run the way Ctrl-C does.
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await coroutine
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _interrupt)

    try:
        factory = importlib.import_module("uvloop").new_event_loop
    except ImportError:
        factory = None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(cancellable())
    except asyncio.CancelledError:  # SIGTERM cancelled the run
        raise KeyboardInterrupt from None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so a SIGTERM stops the service and drops the database too


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
                    server_url, kind = stack.enter_context(database_server(args.keep))
                    report["config"]["database"] = kind
                    database_url = stack.enter_context(scratch_database(server_url, args.keep))
                    workspaces = setup_workspaces(args, database_url)
                report["dataset"] = dataset(workspaces)
                service = stack.enter_context(running_service(database_url, args.workers, log))
                floor = stack.enter_context(
                    running_floor(database_url, args.workers, out.with_suffix(".floor.log"))
                )
                sampler = stack.enter_context(sampling(service.process.pid))
                phases.sampler = sampler
                report["service_log"] = str(log)
                run_async(bench(args, service, floor, database_url, workspaces, phases, report))
            finally:
                if sampler is not None:
                    sampler.stop()
                    report["rss"] = sampler.report()
                    phases.sampler = None
                with phases("stop the service, drop the database"):
                    stack.close()
                if sampler is not None:
                    report["service_log_errors"] = log_errors(log)
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


if __name__ == "__main__":
    sys.exit(main())
