"""The `nps` command: serve, migrate, and manage workspaces and keys."""

import argparse
import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import migrate
from app.config import Settings, async_database_url, get_settings
from app.db import create_engine, create_sessionmaker, session_scope
from app.embedded import embedded_postgres
from app.errors import ProblemError
from app.models import ApiKey, Scope, Workspace
from app.services import keys

T = TypeVar("T")
DEFAULT_WORKSPACE = "default"
CLI_APPLICATION_NAME = "nps-cli"


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured server, else the embedded one under the data directory (not in production)."""
    if settings.database_url:
        yield settings.database_url
        return
    if settings.env == "production":
        sys.exit("NPS_DATABASE_URL is required when NPS_ENV=production")
    with embedded_postgres(settings.data_dir / "postgres") as plain:
        url = async_database_url(plain)
        # Workers started by uvicorn read the same variable, so they find the same server.
        os.environ["NPS_DATABASE_URL"] = url
        get_settings.cache_clear()
        # The embedded database is a local convenience, so it is always kept at the latest schema.
        migrate.upgrade(url)
        yield url


def _in_session(url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
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
        known = await session.scalar(
            select(ApiKey.id).where(ApiKey.key_hash == keys.hash_key(bootstrap_key))
        )
        if known is None:
            await keys.create_api_key(
                session,
                first.id,
                scopes=[Scope.ADMIN],
                label="bootstrap admin",
                raw_key=bootstrap_key,
            )
    return None


def _uvicorn_args(settings: Settings) -> list[str]:
    return [
        "app.main:create_app",
        "--factory",
        f"--host={settings.host}",
        f"--port={settings.port}",
        f"--workers={settings.workers}",
        f"--log-level={settings.log_level}",
        "--proxy-headers",
    ]


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings = get_settings()
    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through Python instead lets
    # the embedded database stop cleanly too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with database_url(settings) as url:
        if settings.env != "production":  # production migrates as its own step: `nps migrate`
            migrate.upgrade(url)
        development = settings.env != "production"
        raw = _in_session(
            url,
            lambda s: ensure_default_workspace(s, settings.bootstrap_api_key, generate=development),
        )
        if raw is not None:
            print(f"Created workspace {DEFAULT_WORKSPACE!r}. Its admin API key (shown only now):")
            print(raw, flush=True)
        print(f"Serving on http://{settings.host}:{settings.port} (docs at /docs)", flush=True)
        if settings.database_url and not settings.worker:
            # Nothing to stop afterwards and no worker to host: hand the process over to uvicorn,
            # so the supervisor of the workers does not keep this process's imports (about 80 MB)
            # for its lifetime. With the worker on, this process hosts it beside uvicorn.
            os.execv(sys.executable, [sys.executable, "-m", "uvicorn", *_uvicorn_args(settings)])
        from app.worker import worker_thread

        # One background worker beside the web server (NPS_WORKER=off: `nps worker` elsewhere).
        with worker_thread(url, settings) if settings.worker else nullcontext():
            uvicorn.run(
                "app.main:create_app",
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=settings.workers,
                log_level=settings.log_level,
                proxy_headers=True,
            )


def cmd_worker(args: argparse.Namespace) -> None:
    from app.worker import run_until_signalled

    settings = get_settings()
    with database_url(settings) as url:
        print("Worker running; SIGTERM or Ctrl-C stops it after the job in hand.", flush=True)
        run_until_signalled(url, settings)


def cmd_migrate(args: argparse.Namespace) -> None:
    with database_url(get_settings()) as url:
        if args.revision.startswith("-"):
            migrate.downgrade(url, args.revision)
        else:
            migrate.upgrade(url, args.revision)


def cmd_create_workspace(args: argparse.Namespace) -> None:
    async def work(session: AsyncSession) -> tuple[Workspace, str]:
        return await keys.create_workspace(session, args.name)

    with database_url(get_settings()) as url:
        workspace, raw = _in_session(url, work)
    print(f"workspace {workspace.id} ({workspace.name}); admin API key:", file=sys.stderr)
    print(raw)


def cmd_create_key(args: argparse.Namespace) -> None:
    async def work(session: AsyncSession) -> str:
        if await session.get(Workspace, args.workspace) is None:
            raise SystemExit(f"no workspace {args.workspace}")
        _, raw = await keys.create_api_key(
            session, args.workspace, scopes=[Scope(s) for s in args.scope], label=args.label
        )
        return raw

    with database_url(get_settings()) as url:
        raw = _in_session(url, work)
    print(raw)


def cmd_revoke_key(args: argparse.Namespace) -> None:
    async def work(session: AsyncSession) -> None:
        await keys.revoke_api_key(session, prefix=args.prefix)

    with database_url(get_settings()) as url:
        _in_session(url, work)
    print(f"revoked {args.prefix}", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="nps", description="B2B NPS service")
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "serve", help="migrate, create the default workspace if none, serve"
    ).set_defaults(func=cmd_serve)
    sub.add_parser(
        "worker", help="run background jobs until SIGTERM (several may run at once)"
    ).set_defaults(func=cmd_worker)
    mig = sub.add_parser("migrate", help="apply migrations (or `nps migrate -1` to step back)")
    mig.add_argument("revision", nargs="?", default="head")
    mig.set_defaults(func=cmd_migrate)
    ws = sub.add_parser("create-workspace", help="print the new workspace's admin key last")
    ws.add_argument("name")
    ws.set_defaults(func=cmd_create_workspace)
    key = sub.add_parser("create-key", help="create an API key for a workspace")
    key.add_argument("--workspace", required=True, type=uuid.UUID)
    key.add_argument("--scope", required=True, action="append", choices=[s.value for s in Scope])
    key.add_argument("--label")
    key.set_defaults(func=cmd_create_key)
    revoke = sub.add_parser("revoke-key", help="revoke an API key by its prefix")
    revoke.add_argument("prefix")
    revoke.set_defaults(func=cmd_revoke_key)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"NPS_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        sys.exit(f"nps: invalid configuration: {problems}")
    try:
        args.func(args)
    except ProblemError as exc:
        sys.exit(f"nps: {exc.detail}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
