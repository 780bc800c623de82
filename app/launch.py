"""Starting the service: `nps serve` (the bootstrap, then uvicorn's web processes, with the
background worker in-process unless it runs elsewhere) and `nps worker`, and the database every
command runs against (the configured server, else the embedded one).

app.cli parses the command line and holds the administrative commands; this module is what
runs for as long as the service does.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import migrate
from app.config import Settings, async_database_url, get_settings
from app.db import create_engine, create_sessionmaker, in_workspace, session_scope, unbound_role
from app.embedded import embedded_postgres, service_login
from app.models import Scope, Workspace
from app.observability import MULTIPROCESS
from app.services import keys
from app.startup import DATABASE_NOT_READY, first_line, retried_in_background

T = TypeVar("T")
DEFAULT_WORKSPACE = "default"
CLI_APPLICATION_NAME = "nps-cli"


@contextmanager
def database_url(settings: Settings, *, migrate_embedded: bool = True) -> Iterator[str]:
    """The configured server, else the embedded one under the data directory (not in production)."""
    if settings.database_url:
        yield settings.database_url
        return
    if settings.env == "production":
        sys.exit("NPS_DATABASE_URL is required when NPS_ENV=production")
    with embedded_postgres(settings.data_dir / "postgres") as plain:
        owner = async_database_url(plain)
        # The embedded database is a local convenience, so it is always kept at the latest schema
        # (`nps migrate` does it itself, to tell what it did).
        if migrate_embedded:
            migrate.upgrade(owner)
            # The service connects as the role the migrations made, so row-level security
            # binds it as in production; the superuser of the embedded server migrates.
            url = async_database_url(asyncio.run(service_login(plain)))
        else:
            url = owner
        # Workers started by uvicorn read the same variables, so they find the same server.
        os.environ["NPS_DATABASE_URL"] = url
        os.environ["NPS_MIGRATION_DATABASE_URL"] = owner
        get_settings.cache_clear()
        yield url


def in_session(url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(url, get_settings(), application_name=CLI_APPLICATION_NAME)
        try:
            async with session_scope(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def ensure_default_workspace(
    session: AsyncSession, bootstrap_key: str | None, *, generate: bool = True
) -> str | None:
    """Create the first workspace when there is none; returns a generated admin key to show once.

    With `bootstrap_key` that is the admin key (added to the first workspace if it is missing).
    Without one, a key is generated only when `generate` is set: production never prints a
    secret into its logs.
    """
    first = await session.scalar(select(Workspace).order_by(Workspace.created_at).limit(1))
    if first is None:
        if bootstrap_key is None and not generate:
            return None
        _, raw = await keys.create_workspace(session, DEFAULT_WORKSPACE, admin_key=bootstrap_key)
        return None if bootstrap_key is not None else raw
    if bootstrap_key is not None:
        known = await keys.key_workspace(session, key_hashes=keys.key_hashes(bootstrap_key))
        if known is None:
            await in_workspace(session, first.id)
            await keys.create_api_key(
                session,
                first.id,
                scopes=[Scope.ADMIN],
                label="bootstrap admin",
                raw_key=bootstrap_key,
            )
    return None


def uvicorn_options(settings: Settings) -> dict[str, object]:
    """uvicorn.Config keywords every web process of `nps serve` runs with, however started."""
    return {
        "log_level": settings.log_level,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        # Beyond this many open connections a request gets uvicorn's own 503 (README:
        # Connections, bodies and slow clients); idle keep-alive connections close after this.
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": settings.keep_alive_seconds,
    }


def _uvicorn_args(settings: Settings) -> list[str]:
    options = [
        f"--{name.replace('_', '-')}" if value is True else f"--{name.replace('_', '-')}={value}"
        for name, value in uvicorn_options(settings).items()
    ]
    return [
        "app.main:serve_app",
        "--factory",
        f"--host={settings.host}",
        f"--port={settings.port}",
        f"--workers={settings.workers}",
        *options,
    ]


def _share_metrics(settings: Settings) -> None:
    """With several web processes, their request metrics are kept in files that /metrics sums
    (prometheus_client's multiprocess mode), emptied at each start."""
    if settings.workers < 2 or os.environ.get(MULTIPROCESS):
        return
    directory = (settings.data_dir / "metrics").resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS] = str(directory)


def cmd_serve(args: argparse.Namespace, *, hand_over: bool = True) -> None:
    """`hand_over`: off when the caller holds something this process must keep (`nps demo`'s
    embedded database), so the server runs here instead of replacing the process."""
    import uvicorn

    settings = get_settings()
    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through Python instead lets
    # the embedded database stop cleanly too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _share_metrics(settings)
    with database_url(settings) as url:
        development = settings.env != "production"

        async def bootstrap(session: AsyncSession) -> tuple[str | None, str | None]:
            unbound = await unbound_role(session)
            return unbound, await ensure_default_workspace(
                session, settings.bootstrap_api_key, generate=development
            )

        def bootstrap_once() -> None:
            if development:  # production migrates as its own step: `nps migrate`
                migrate.upgrade(get_settings().owner_database_url or url)
            unbound, raw = in_session(url, bootstrap)
            if unbound is not None:
                print(
                    f"warning: the service connects as {unbound!r}, a superuser or a role with "
                    "BYPASSRLS: row-level security does not bind it (README: Row-level security)",
                    file=sys.stderr,
                    flush=True,
                )
            if raw is not None:
                print(
                    f"Created workspace {DEFAULT_WORKSPACE!r}. Its admin API key (shown only now):"
                )
                print(raw, flush=True)

        try:
            bootstrap_once()
            pending = False
        except DATABASE_NOT_READY as exc:
            # Serve all the same: /healthz says the process is up, /readyz and every call a 503
            # until the database is there; the bootstrap is retried beside the web server.
            print(
                f"warning: the database is not ready ({first_line(exc)}); serving, with /readyz "
                "and the API answering 503 until it is, and retrying the bootstrap",
                file=sys.stderr,
                flush=True,
            )
            pending = True
        print(f"Serving on http://{settings.host}:{settings.port} (docs at /docs)", flush=True)
        if settings.database_url and not settings.worker and not pending and hand_over:
            # Nothing to stop afterwards and no worker to host: hand the process over to uvicorn,
            # so the supervisor of the workers does not keep this process's imports (about 80 MB)
            # for its lifetime. With the worker on, this process hosts it beside uvicorn.
            if settings.workers > 1:
                # One listening socket per web process (app.serving): uvicorn's workers share
                # one, and a burst of connections lands on whichever process woke first.
                options = uvicorn_options(settings)
                os.execv(
                    sys.executable,
                    [
                        sys.executable,
                        "-m",
                        "app.serving",
                        "parent",
                        settings.host,
                        str(settings.port),
                        str(settings.workers),
                        json.dumps(options),
                    ],
                )
            os.execv(
                sys.executable, [sys.executable, "-m", "app.uvicorn_exec", *_uvicorn_args(settings)]
            )
        from app.worker import worker_thread

        # One background worker beside the web server (NPS_WORKER=off: `nps worker` elsewhere),
        # started once the bootstrap is done; with the bootstrap pending, its retries run here
        # too (this process stays to host them), and the worker starts when they succeed.
        worker = ExitStack()

        def start_worker() -> None:
            if settings.worker:
                worker.enter_context(worker_thread(url, settings))

        def bootstrap_then_work() -> None:
            bootstrap_once()
            start_worker()

        if not pending:
            start_worker()
        # Closed in reverse: the retries stop before the worker does.
        with worker, retried_in_background(bootstrap_then_work) if pending else nullcontext():
            if settings.workers > 1 and not settings.worker:
                from app.serving import Supervisor, listening_sockets

                sockets = listening_sockets(settings.host, settings.port, settings.workers)
                sys.exit(Supervisor(sockets, uvicorn_options(settings)).run())
            uvicorn.run(
                "app.main:serve_app",
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=settings.workers,
                **uvicorn_options(settings),  # type: ignore[arg-type]
            )


def cmd_worker(args: argparse.Namespace) -> None:
    from app.worker import run_until_signalled

    settings = get_settings()
    with database_url(settings) as url:
        print("Worker running; SIGTERM or Ctrl-C stops it after the job in hand.", flush=True)
        run_until_signalled(url, settings)
