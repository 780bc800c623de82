"""Workspaces and API keys. A key is shown once; only its SHA-256 is stored."""

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, NotFound
from app.models import ApiKey, Scope, Workspace

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


def hash_key(raw: str) -> bytes:
    return hashlib.sha256(raw.encode()).digest()


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
    taken = await session.scalar(
        select(func.count())
        .select_from(ApiKey)
        .where((ApiKey.prefix == prefix) | (ApiKey.key_hash == hash_key(raw)))
    )
    if taken:
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
    _, raw = await create_api_key(
        session, workspace.id, scopes=[Scope.ADMIN], label="bootstrap admin", raw_key=admin_key
    )
    return workspace, raw


async def authenticate(session: AsyncSession, raw: str, *, now: datetime) -> ApiKey | None:
    """The live key with this secret, or None; marks it used."""
    key = await session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(raw), ApiKey.revoked_at.is_(None))
    )
    if key is None:
        return None
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        # SKIP LOCKED: when another request of this key is already recording its use, this one
        # must not queue behind that request's whole transaction for a hint.
        unlocked = (
            select(ApiKey.id)
            .where(ApiKey.workspace_id == key.workspace_id, ApiKey.id == key.id)
            .with_for_update(skip_locked=True)
        )
        await session.execute(
            update(ApiKey)
            .where(ApiKey.workspace_id == key.workspace_id, ApiKey.id.in_(unlocked))
            .values(last_used_at=now)
        )
    return key


async def list_api_keys(session: AsyncSession, workspace_id: uuid.UUID) -> list[ApiKey]:
    rows = await session.scalars(
        select(ApiKey)
        .where(ApiKey.workspace_id == workspace_id)
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return list(rows)


async def revoke_api_key(
    session: AsyncSession, *, prefix: str, workspace_id: uuid.UUID | None = None
) -> ApiKey:
    """Revoke by prefix; with workspace_id only that workspace's keys are candidates."""
    query = select(ApiKey).where(ApiKey.prefix == prefix)
    if workspace_id is not None:
        query = query.where(ApiKey.workspace_id == workspace_id)
    key = await session.scalar(query)
    if key is None:
        raise NotFound(f"no API key with prefix {prefix!r}")
    if key.revoked_at is None:
        key.revoked_at = await session.scalar(select(func.now()))
        await session.flush()
    return key
