"""The `nps` command: serve, migrate, and manage workspaces and keys.

What serves (`nps serve`, `nps worker`) and finds the database is app.launch.
"""

import argparse
import asyncio
import json
import sys
from datetime import UTC

from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app import demo, migrate
from app.config import get_settings, key_pepper
from app.db import create_engine, in_workspace
from app.errors import Conflict, LastAdminKey, NotFound, ProblemError
from app.launch import CLI_APPLICATION_NAME, cmd_serve, cmd_worker, database_url, in_session
from app.models import ApiKey, Scope, Workspace
from app.services import keys


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
        found = in_session(url, keys.list_workspaces)
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
        workspace, raw = in_session(url, work)
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
        workspace, key, raw = in_session(url, work)
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
        said = in_session(url, work)
    print("\n".join(said), file=sys.stderr)


def _mapping_arg(text: str) -> dict[str, str | None]:
    """--mapping: a JSON object, or @FILE holding one."""
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as given:
            text = given.read()
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("a JSON object: their column -> our field (or null)")
    return value


def cmd_import(args: argparse.Namespace) -> None:
    from app.cli_import import run_file_import

    with database_url(get_settings()) as url:
        run_file_import(url, args)


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
    demo.add_parser(sub)
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
    imp = sub.add_parser(
        "import",
        help="import a CSV or NDJSON file as POST /v1/imports does, with a progress bar",
    )
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--kind", choices=["accounts", "stakeholders", "responses"])
    imp.add_argument("--mapping", type=_mapping_arg, help="JSON object or @FILE")
    imp.add_argument("--preset", choices=["delighted", "crm"])
    imp.add_argument("--format", choices=["csv", "ndjson"], help="default: from the file name")
    imp.add_argument(
        "--workspace", metavar="ID_OR_NAME", help="default: the only (or first) workspace"
    )
    imp.add_argument(
        "--rejects",
        metavar="PATH",
        help="where to write the rejected rows (default FILE.rejects.csv)",
    )
    imp.set_defaults(func=cmd_import)
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
