"""Workspaces and API keys. A key is shown once; only its HMAC-SHA256 under the server's pepper
(NPS_KEY_PEPPER, app.config.key_pepper) is stored, so a copy of the table alone does not let
anyone test guesses of a key chosen by hand. Keys stored before the pepper (their plain SHA-256)
still authenticate, and are stored peppered from their first use on."""

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings, key_pepper
from app.db import AUTHENTICATED_WORKSPACE, driver, each_workspace, in_workspace
from app.errors import Conflict, LastAdminKey, NotFound
from app.local_limits import Flush
from app.models import ApiKey, Scope, Workspace
from app.services.lookups import Rider, run_lookup

KEY_PREFIX = "nps_"
PREFIX_LENGTH = 12
# last_used_at is a hint for humans, so it is written at most once a minute per key.
LAST_USED_RESOLUTION = timedelta(minutes=1)

SCOPE_IMPLIES: dict[Scope, frozenset[Scope]] = {
    Scope.ADMIN: frozenset({Scope.ADMIN, Scope.WRITE, Scope.READ}),
    Scope.WRITE: frozenset({Scope.WRITE, Scope.READ}),
    Scope.READ: frozenset({Scope.READ}),
}


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


# The process's pepper: set by the entry points (app.main.create_app, app.cli), else read from
# the environment's settings on first use.
_pepper: list[bytes] = []


def use_pepper(pepper: bytes) -> None:
    _pepper[:] = [pepper]


def hash_key(raw: str) -> bytes:
    """What is stored of a key: HMAC-SHA256 under the pepper."""
    if not _pepper:
        use_pepper(key_pepper(get_settings()))
    return hmac.digest(_pepper[0], raw.encode(), "sha256")


def legacy_hash(raw: str) -> bytes:
    """What was stored of a key before the pepper: its SHA-256."""
    return hashlib.sha256(raw.encode()).digest()


def key_hashes(raw: str) -> list[bytes]:
    """Every form a key may be stored in, the current one first."""
    return [hash_key(raw), legacy_hash(raw)]


def granted(scopes: list[str]) -> frozenset[Scope]:
    """Every scope a key holds, with admin implying write and write implying read."""
    out: set[Scope] = set()
    for scope in scopes:
        out |= SCOPE_IMPLIES[Scope(scope)]
    return frozenset(out)


async def create_api_key(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    scopes: list[Scope],
    label: str | None = None,
    raw_key: str | None = None,
) -> tuple[ApiKey, str]:
    raw = raw_key or generate_key()
    prefix = raw[:PREFIX_LENGTH]
    if await key_workspace(session, prefix=prefix, key_hashes=key_hashes(raw)) is not None:
        raise Conflict("an API key with this prefix already exists")
    key = ApiKey(
        workspace_id=workspace_id,
        prefix=prefix,
        key_hash=hash_key(raw),
        scopes=sorted({s.value for s in scopes}),
        label=label,
    )
    session.add(key)
    await session.flush()
    await session.refresh(key)
    return key, raw


async def create_workspace(
    session: AsyncSession, name: str, *, admin_key: str | None = None
) -> tuple[Workspace, str]:
    """A new tenant and its first admin key (`admin_key` when given, else a generated one)."""
    workspace = Workspace(name=name)
    session.add(workspace)
    await session.flush()
    await in_workspace(session, workspace.id)
    _, raw = await create_api_key(
        session, workspace.id, scopes=[Scope.ADMIN], label="bootstrap admin", raw_key=admin_key
    )
    return workspace, raw


@dataclass(frozen=True, slots=True)
class LiveKey:
    """An API key that authenticated a request: what the request needs to know of it."""

    workspace_id: uuid.UUID
    id: uuid.UUID
    prefix: str
    scopes: list[str]


# On the driver (app.db.driver): every API request runs these. live_api_key (migrations 0013,
# 0015) finds the key, stored in any of its forms (key_hashes), in whichever workspace and sets
# the transaction's workspace to the key's, so every later statement of the request sees that
# workspace's rows only (row-level security).
_LIVE_KEY = "live_api_key($1)"
_LIVE_KEY_COLUMNS = "k.workspace_id, k.id, k.prefix, k.scopes, k.last_used_at, k.key_hash"
# A key stored before the pepper, stored peppered now (once per key).
_REHASH = "UPDATE api_keys SET key_hash = $3 WHERE workspace_id = $1 AND id = $2"
# SKIP LOCKED: when another request of this key is already recording its use, this one must
# not queue behind that request's whole transaction for a hint.
_MARK_USED = """
    UPDATE api_keys SET last_used_at = $3
    WHERE workspace_id = $1 AND id IN (
        SELECT id FROM api_keys WHERE workspace_id = $1 AND id = $2 FOR UPDATE SKIP LOCKED
    )
"""


async def authenticate(
    session: AsyncSession,
    raw: str,
    *,
    now: datetime,
    flush: Flush | None = None,
    rider: Rider | None = None,
) -> LiveKey | None:
    """The live key with this secret, or None; marks it used (at most once a minute). With a
    `flush`, its rate-limit counts are added in the same statement (they commit with the
    request: the guard counts them again unless it does); a `rider` runs in it too
    (app.services.lookups)."""
    conn = await driver(session)
    hashes = key_hashes(raw)
    row = await run_lookup(
        conn, _LIVE_KEY, _LIVE_KEY_COLUMNS, hashes, session=session, flush=flush, rider=rider
    )
    if row is None or row["id"] is None:
        return None
    session.info[AUTHENTICATED_WORKSPACE] = row["workspace_id"]
    if row["key_hash"] != hashes[0]:
        await conn.execute(_REHASH, row["workspace_id"], row["id"], hashes[0])
    last_used: datetime | None = row["last_used_at"]
    if last_used is None or now - last_used > LAST_USED_RESOLUTION:
        await conn.execute(_MARK_USED, row["workspace_id"], row["id"], now)
    return LiveKey(row["workspace_id"], row["id"], row["prefix"], list(row["scopes"]))


async def list_api_keys(session: AsyncSession, workspace_id: uuid.UUID) -> list[ApiKey]:
    rows = await session.scalars(
        select(ApiKey)
        .where(ApiKey.workspace_id == workspace_id)
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return list(rows)


def _active_admin(workspace_id: uuid.UUID) -> ColumnElement[bool]:
    return and_(
        ApiKey.workspace_id == workspace_id,
        ApiKey.revoked_at.is_(None),
        ApiKey.scopes.contains([Scope.ADMIN.value]),
    )


async def active_admin_keys(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count()).select_from(ApiKey).where(_active_admin(workspace_id))
    )
    return count or 0


async def revoke_api_key(
    session: AsyncSession,
    *,
    prefix: str,
    workspace_id: uuid.UUID | None = None,
    force: bool = False,
) -> ApiKey:
    """Revoke by prefix; with workspace_id only that workspace's keys are candidates.

    A workspace's last active admin key is refused (LastAdminKey) unless `force`: without one,
    nobody can manage the workspace's keys and settings through the API. Revoking a revoked key
    changes nothing.
    """
    query = select(ApiKey).where(ApiKey.prefix == prefix)
    if workspace_id is not None:
        query = query.where(ApiKey.workspace_id == workspace_id)
    key = await session.scalar(query)
    if key is None:
        raise NotFound(f"no API key with prefix {prefix!r}")
    if key.revoked_at is None and Scope.ADMIN.value in key.scopes:
        # Revocations of one workspace's admin keys take turns on the workspace row, so two
        # concurrent ones cannot each count the other's key as still active. NO KEY UPDATE:
        # writes that only reference the workspace (FOR KEY SHARE) are not held up.
        await session.execute(
            select(Workspace.id)
            .where(Workspace.id == key.workspace_id)
            .with_for_update(key_share=True)
        )
        await session.refresh(key)  # as the revocation this one waited for left it
        if key.revoked_at is None and not force:
            others = await session.scalar(
                select(func.count())
                .select_from(ApiKey)
                .where(_active_admin(key.workspace_id), ApiKey.id != key.id)
            )
            if not others:
                raise LastAdminKey(
                    f"{key.prefix} is the workspace's last active admin key: without it nobody "
                    "could manage its keys or settings. Create another admin key first (POST "
                    '/v1/api-keys with {"scopes": ["admin"]}), then revoke this one. Locked out '
                    "already? The operator restarts the service with NPS_BOOTSTRAP_API_KEY set "
                    "(for the first workspace) or runs `nps create-key --workspace <id or name> "
                    "--scope admin` (README: Lost the admin key?)"
                )
    if key.revoked_at is None:
        key.revoked_at = await session.scalar(select(func.now()))
        await session.flush()
    return key


async def key_workspace(
    session: AsyncSession, *, prefix: str | None = None, key_hashes: list[bytes] | None = None
) -> uuid.UUID | None:
    """The workspace of the key (revoked or not) with this prefix or stored as one of these
    hashes, in whichever workspace: api_key_workspace (migrations 0013, 0015) looks past
    row-level security."""
    found: uuid.UUID | None = await (await driver(session)).fetchval(
        "SELECT api_key_workspace($1, $2)", prefix, key_hashes
    )
    return found


async def find_key(session: AsyncSession, ref: str) -> ApiKey | None:
    """The key (revoked or not) whose prefix is `ref`, or, when `ref` is longer than a prefix,
    whose secret it is; the session's transaction then acts in the key's workspace."""
    by_secret = len(ref) > PREFIX_LENGTH
    workspace_id = await (
        key_workspace(session, key_hashes=key_hashes(ref))
        if by_secret
        else key_workspace(session, prefix=ref)
    )
    if workspace_id is None:
        return None
    await in_workspace(session, workspace_id)
    where = ApiKey.key_hash.in_(key_hashes(ref)) if by_secret else ApiKey.prefix == ref
    found: ApiKey | None = await session.scalar(
        select(ApiKey).where(ApiKey.workspace_id == workspace_id, where)
    )
    return found


async def caller_key(
    session: AsyncSession, workspace_id: uuid.UUID, key_id: uuid.UUID
) -> tuple[Workspace, ApiKey]:
    """The workspace of an authenticated key, and the key."""
    row = (
        await session.execute(
            select(Workspace, ApiKey)
            .join(ApiKey, ApiKey.workspace_id == Workspace.id)
            .where(Workspace.id == workspace_id, ApiKey.id == key_id)
        )
    ).one()
    return row[0], row[1]


@dataclass(frozen=True, slots=True)
class WorkspaceSummary:
    id: uuid.UUID
    name: str
    created_at: datetime
    active_keys: int
    active_admin_keys: int


async def list_workspaces(session: AsyncSession) -> list[WorkspaceSummary]:
    """Every workspace (oldest first) with its count of active keys, and of active admin keys.

    Each workspace's keys are counted in a statement of its own, acting in that workspace
    (row-level security): an operator's listing, not a request's path."""
    active = ApiKey.revoked_at.is_(None)
    admin = ApiKey.scopes.contains([Scope.ADMIN.value])
    counts: dict[uuid.UUID, tuple[int, int]] = {}
    async for workspace_id in each_workspace(session):
        row = (
            await session.execute(
                select(func.count().filter(active), func.count().filter(active, admin)).where(
                    ApiKey.workspace_id == workspace_id
                )
            )
        ).one()
        counts[workspace_id] = (row[0], row[1])
    rows = await session.execute(
        select(Workspace.id, Workspace.name, Workspace.created_at).order_by(
            Workspace.created_at, Workspace.id
        )
    )
    return [WorkspaceSummary(*row, *counts.get(row.id, (0, 0))) for row in rows]


async def workspaces_matching(session: AsyncSession, ref: str) -> list[Workspace]:
    """The workspace whose id is `ref`, else every workspace named `ref` (oldest first)."""
    try:
        by_id = await session.get(Workspace, uuid.UUID(ref))
    except ValueError:
        by_id = None
    if by_id is not None:
        return [by_id]
    named = await session.scalars(
        select(Workspace).where(Workspace.name == ref).order_by(Workspace.created_at, Workspace.id)
    )
    return list(named)
