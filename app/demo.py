"""`nps demo` (and `make demo`): a fresh workspace seeded with a realistic B2B data set, its read
key printed, then the service served, so a new user sees a full dashboard in one command.

The data set is the benchmark's generator (bench/data.py) at a small size: accounts in six
industries and three segments, stakeholders with roles, job levels and departments, two years of
answers whose volume grows, each account with its own level and drift (a few sour, a few improve),
comments on about a fifth and driver ratings on half, a few answers synced weeks late. It is
loaded through the API itself (in process, before the server starts), as a CRM would send it.
"""

import argparse
import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import get_settings
from app.db import in_workspace
from app.models import Scope as KeyScope
from app.services import keys

DEMO_WORKSPACE = "demo"
# Small enough to load in seconds on a laptop, large enough that most accounts have a score
# with an interval, a few are `insufficient`, and the souring ones show up as at risk.
DEFAULT_ACCOUNTS = 40
DEFAULT_STAKEHOLDERS = 480
DEFAULT_RESPONSES = 8000
SEED = "demo"


@dataclass(frozen=True, slots=True)
class DemoKeys:
    workspace_id: uuid.UUID
    workspace_name: str
    admin_key: str
    read_key: str


def _generator() -> Any:
    try:
        from bench import data
    except ImportError:  # an installed wheel carries app/ only
        sys.exit("nps demo: the data generator (bench/data.py) is part of the source checkout")
    return data


async def create_demo_workspace(session: AsyncSession) -> DemoKeys:
    """A new workspace named `demo` (`demo-2`, ... when taken) with an admin and a read key."""
    name, number = DEMO_WORKSPACE, 1
    while await keys.workspaces_matching(session, name):
        number += 1
        name = f"{DEMO_WORKSPACE}-{number}"
    workspace, admin = await keys.create_workspace(session, name)
    await in_workspace(session, workspace.id)
    _, read = await keys.create_api_key(
        session, workspace.id, scopes=[KeyScope.READ], label="demo dashboard (read)"
    )
    return DemoKeys(workspace.id, name, admin, read)


async def _ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    if response.status_code not in statuses:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:500]}"
        )
    body: dict[str, Any] = response.json()
    return body


async def seed(
    client: httpx.AsyncClient,
    *,
    accounts: int = DEFAULT_ACCOUNTS,
    stakeholders: int = DEFAULT_STAKEHOLDERS,
    responses: int = DEFAULT_RESPONSES,
    seed: str = SEED,
    end: datetime | None = None,
) -> int:
    """Register the accounts and stakeholders and post the answers in batches through `client`
    (an admin or write key's); the number of answers stored."""
    data = _generator()
    world = data.build_world(seed, accounts=accounts, stakeholders=stakeholders)
    for account in world.accounts:
        await _ok(await client.put(f"/v1/accounts/{account.id}", json=account.body()), 200, 201)
    for person in world.stakeholders:
        await _ok(await client.put(f"/v1/stakeholders/{person.id}", json=person.body()), 200, 201)
    items = data.generate_responses(world, seed, count=responses, end=end or datetime.now(UTC))
    stored = 0
    bodies: Sequence[tuple[int, bytes]] = data.batch_bodies(items)
    for number, (_, body) in enumerate(bodies):
        result = await _ok(
            await client.post(
                "/v1/responses/batch",
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": f"demo-{seed}-{number}",
                },
            ),
            200,
            207,
        )
        stored += int(result["stored"])
    return stored


def _with_state(app: ASGIApp, state: dict[str, Any]) -> ASGIApp:
    """The app with its lifespan's state in every request's scope, as a server passes it."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "state": dict(state)}, receive, send)

    return wrapped


@asynccontextmanager
async def in_process_api(key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API running in this process (its lifespan started), with `key`."""
    from app.main import create_app

    app = create_app()
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=_with_state(app, dict(state or {})))
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://demo.invalid",
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        ) as client:
            yield client


async def _analyze(url: str) -> None:
    import asyncpg

    from app.embedded import plain_dsn

    conn = await asyncpg.connect(plain_dsn(url))
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def cmd_demo(args: argparse.Namespace) -> None:
    from app import migrate
    from app.launch import cmd_serve, database_url, in_session

    settings = get_settings()
    if settings.env == "production":
        sys.exit(
            "nps demo: not in production (NPS_ENV=production); it makes a workspace of its own"
        )
    with database_url(settings) as url:
        # As `nps serve` does in development: the schema at head before the workspace is made.
        migrate.upgrade(get_settings().owner_database_url or url)
        made = in_session(url, create_demo_workspace)
        print(f"Seeding workspace {made.workspace_name!r} ({made.workspace_id})...", flush=True)

        async def load() -> int:
            async with in_process_api(made.admin_key) as client:
                return await seed(
                    client,
                    accounts=args.accounts,
                    stakeholders=args.stakeholders,
                    responses=args.responses,
                )

        stored = asyncio.run(load())
        # Statistics for the tables just filled: without them the planner guesses, and the
        # at-risk list took over 30 s where it takes under one (the owner may analyse them).
        asyncio.run(_analyze(get_settings().owner_database_url or url))
        base = get_settings().public_base_url
        print(
            f"Stored {stored:,} answers from {args.stakeholders:,} people "
            f"at {args.accounts:,} accounts.",
            flush=True,
        )
        print(f"Open {base}/ and paste the demo's read key:", flush=True)
        print(f"Read key: {made.read_key}", flush=True)
        print(f"(its admin key, to write to it: {made.admin_key})", flush=True)
        # Served on the same database (the embedded one stays up until the server stops).
        cmd_serve(args, hand_over=False)


def add_parser(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="seed a fresh workspace with a demo data set, print its read key, serve",
    )
    demo.add_argument("--accounts", type=int, default=DEFAULT_ACCOUNTS)
    demo.add_argument("--stakeholders", type=int, default=DEFAULT_STAKEHOLDERS)
    demo.add_argument("--responses", type=int, default=DEFAULT_RESPONSES)
    demo.set_defaults(func=cmd_demo)
