"""The `nps` command: serve, migrate, and manage workspaces and keys."""

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from datetime import UTC
from typing import TypeVar

from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app import migrate
from app.config import Settings, async_database_url, get_settings, key_pepper
from app.db import (
    create_engine,
    create_sessionmaker,
    in_workspace,
    session_scope,
    unbound_role,
)
from app.embedded import embedded_postgres, service_login
from app.errors import Conflict, LastAdminKey, NotFound, ProblemError
from app.models import ApiKey, Scope, Workspace
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


def cmd_serve(args: argparse.Namespace) -> None:
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
            unbound, raw = _in_session(url, bootstrap)
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
        if settings.database_url and not settings.worker and not pending:
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


def _current_revision(url: str) -> str | None:
    async def read() -> str | None:
        engine = create_engine(url, get_settings(), application_name=CLI_APPLICATION_NAME)
        try:
            async with engine.connect() as connection:
                return await migrate.current_revision(connection)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def cmd_migrate(args: argparse.Namespace) -> None:
    with database_url(get_settings(), migrate_embedded=False) as service:
        url = get_settings().owner_database_url or service  # the tables' owner migrates
        before = _current_revision(url)
        if args.revision.startswith("-"):
            migrate.downgrade(url, args.revision)
        else:
            migrate.upgrade(url, args.revision)
        after = _current_revision(url)
    print("\n".join(migrate.report(before, after)))


def _show(workspace: Workspace) -> str:
    return f"{workspace.id} ({workspace.name})"


async def _workspace(session: AsyncSession, ref: str) -> Workspace:
    """The workspace named or numbered `ref`; an unknown or ambiguous name is an error."""
    found = await keys.workspaces_matching(session, ref)
    if not found:
        raise NotFound(f"no workspace has the id or name {ref!r}; `nps workspaces` lists them")
    if len(found) > 1:
        ids = ", ".join(str(w.id) for w in found)
        raise Conflict(f"{len(found)} workspaces are named {ref!r}: {ids}; pass one of these ids")
    return found[0]


def cmd_workspaces(args: argparse.Namespace) -> None:
    with database_url(get_settings()) as url:
        found = _in_session(url, keys.list_workspaces)
    rows: list[dict[str, str | int]] = [
        {
            "id": str(w.id),
            "name": w.name,
            "created_at": w.created_at.astimezone(UTC).isoformat(timespec="seconds"),
            "active_keys": w.active_keys,
            "active_admin_keys": w.active_admin_keys,
        }
        for w in found
    ]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        print("no workspaces yet: `nps create-workspace NAME` makes one", file=sys.stderr)
        return
    header: dict[str, str | int] = {
        "id": "ID",
        "name": "NAME",
        "created_at": "CREATED",
        "active_keys": "KEYS",
        "active_admin_keys": "ADMIN KEYS",
    }
    table = [header, *rows]
    widths = {column: max(len(str(row[column])) for row in table) for column in header}
    for row in table:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in header).rstrip())


def cmd_create_workspace(args: argparse.Namespace) -> None:
    async def work(session: AsyncSession) -> tuple[Workspace, str]:
        return await keys.create_workspace(session, args.name)

    with database_url(get_settings()) as url:
        workspace, raw = _in_session(url, work)
    print(f"workspace {workspace.id} ({workspace.name}); admin API key:", file=sys.stderr)
    print(raw)


def cmd_create_key(args: argparse.Namespace) -> None:
    async def work(session: AsyncSession) -> tuple[Workspace, ApiKey, str]:
        workspace = await _workspace(session, args.workspace)
        await in_workspace(session, workspace.id)
        key, raw = await keys.create_api_key(
            session, workspace.id, scopes=args.scope, label=args.label
        )
        return workspace, key, raw

    with database_url(get_settings()) as url:
        workspace, key, raw = _in_session(url, work)
    scopes = ", ".join(key.scopes)
    print(f"key {key.prefix} ({scopes}) of workspace {_show(workspace)}:", file=sys.stderr)
    print(raw)


def cmd_revoke_key(args: argparse.Namespace) -> None:
    async def work(session: AsyncSession) -> list[str]:
        key = await keys.find_key(session, args.key)
        if key is None:
            raise NotFound(
                f"no API key with prefix {args.key!r}"
                if len(args.key) <= keys.PREFIX_LENGTH
                else "no API key has this secret; pass the whole key or its first "
                f"{keys.PREFIX_LENGTH} characters"
            )
        workspace = await session.get_one(Workspace, key.workspace_id)
        if key.revoked_at is not None:
            return [f"{key.prefix} was already revoked on {key.revoked_at.astimezone(UTC)}"]
        try:
            await keys.revoke_api_key(
                session, prefix=key.prefix, workspace_id=workspace.id, force=args.force
            )
        except LastAdminKey:
            raise LastAdminKey(
                f"{key.prefix} is the last active admin key of workspace {_show(workspace)}; "
                f"create another first (`nps create-key --workspace {workspace.id} --scope "
                "admin`), or pass --force to revoke it all the same"
            ) from None
        said = [f"revoked {key.prefix} of workspace {_show(workspace)}"]
        if await keys.active_admin_keys(session, workspace.id) == 0:
            said.append(
                f"workspace {_show(workspace)} has no active admin key now; "
                f"`nps create-key --workspace {workspace.id} --scope admin` makes one"
            )
        return said

    with database_url(get_settings()) as url:
        said = _in_session(url, work)
    print("\n".join(said), file=sys.stderr)


def _scopes(text: str) -> list[Scope]:
    try:
        return [Scope(part.strip()) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the scopes are {', '.join(s.value for s in Scope)}"
        ) from None


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="nps", description="B2B NPS service")
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "serve", help="migrate, create the default workspace if none, serve"
    ).set_defaults(func=cmd_serve)
    sub.add_parser(
        "worker", help="run background jobs until SIGTERM (several may run at once)"
    ).set_defaults(func=cmd_worker)
    mig = sub.add_parser(
        "migrate",
        help="apply migrations up to head or REVISION (`-1` steps back one) and say which",
    )
    mig.add_argument("revision", nargs="?", default="head")
    mig.set_defaults(func=cmd_migrate)
    ws = sub.add_parser("create-workspace", help="print the new workspace's admin key last")
    ws.add_argument("name")
    ws.set_defaults(func=cmd_create_workspace)
    listing = sub.add_parser(
        "workspaces", help="list the workspaces: id, name, created, active keys, active admin keys"
    )
    listing.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    listing.set_defaults(func=cmd_workspaces)
    key = sub.add_parser(
        "create-key", help="create an API key for a workspace (the key is the last line of stdout)"
    )
    key.add_argument(
        "--workspace", required=True, metavar="ID_OR_NAME", help="a workspace's id or its name"
    )
    key.add_argument(
        "--scope",
        "--scopes",
        dest="scope",
        required=True,
        action="extend",
        type=_scopes,
        metavar="SCOPE",
        help="read, write or admin; repeat it or separate scopes with commas",
    )
    key.add_argument("--label")
    key.set_defaults(func=cmd_create_key)
    revoke = sub.add_parser(
        "revoke-key", help="revoke an API key, given whole or by its first 12 characters"
    )
    revoke.add_argument(
        "key", metavar="KEY_OR_PREFIX", help="the whole key, or its first 12 characters"
    )
    revoke.add_argument(
        "--force",
        action="store_true",
        help="revoke even the workspace's last active admin key",
    )
    revoke.set_defaults(func=cmd_revoke_key)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"NPS_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        sys.exit(f"nps: invalid configuration: {problems}")
    try:
        keys.use_pepper(key_pepper(settings))
        args.func(args)
    except ProblemError as exc:
        sys.exit(f"nps: {exc.detail}")
    except CommandError as exc:  # Alembic's: an unknown revision, say
        sys.exit(f"nps: {exc}")
    except (OSError, SQLAlchemyError) as exc:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        first = str(cause).strip().splitlines()
        sys.exit(f"nps: the database failed: {first[0] if first else type(cause).__name__}")
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
